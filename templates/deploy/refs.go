package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// checkRefs reports a literal flavor the pool lacks, or an image the
// deployment's project may not use (another project's private image is
// unknown, by any ID form, exactly as through Glance and Nova).
func (pl *planner) checkRefs(ctx context.Context, inst *Step) {
	var props map[string]any
	_ = json.Unmarshal([]byte(inst.Props), &props)
	path := "resources." + inst.Resource + ".properties."
	if sh := props["shared"]; inst.Kind == templates.KindNetwork && (sh == true || sh == "true") {
		pl.bad(path+"shared", "only a cloud admin may create a shared network, and a deployment acts as its project")
	}
	if f, ok := props["flavor"].(string); ok && inst.Kind == templates.KindServer && !isSymbol(f) {
		if _, found := pl.anyFlavor(ctx, f); !found {
			pl.bad(path+"flavor", "unknown flavor %q", f)
		}
	}
	if img, ok := props["image"].(string); ok && !isSymbol(img) && (inst.Kind == templates.KindServer || inst.Kind == templates.KindVolume) {
		usable, seen := pl.images[img]
		if !seen {
			_, err := pl.e.Resources.Image(ctx, pl.caller, img)
			usable = err == nil
			pl.images[img] = usable
		}
		if !usable {
			pl.bad(path+"image", "unknown image %q", img)
		}
	}
	for _, r := range literalRefs(inst.Kind, props) {
		pl.checkRef(ctx, path+r.path, r.kind, r.ref, inst.PeerName)
	}
}

// literalRef is a reference to an existing resource a property holds as
// a literal (not get_resource): what the create will resolve.
type literalRef struct {
	path string // under the resource's properties
	kind templates.Kind
	ref  string
}

// literalRefs lists the literal references of one resource's properties:
// a server's networks (network or port), boot volume and key pair, a
// subnet's or port's network, an attachment's server and volume.
func literalRefs(k templates.Kind, props map[string]any) []literalRef {
	var out []literalRef
	add := func(path string, kind templates.Kind, v any) {
		if s, ok := v.(string); ok && s != "" && !isSymbol(s) {
			out = append(out, literalRef{path: path, kind: kind, ref: s})
		}
	}
	switch k {
	case templates.KindServer:
		nets, _ := props["networks"].([]any)
		for i, n := range nets {
			if m, ok := n.(map[string]any); ok {
				add(fmt.Sprintf("networks[%d].network", i), templates.KindNetwork, m["network"])
				add(fmt.Sprintf("networks[%d].port", i), templates.KindPort, m["port"])
			}
		}
		add("boot_volume", templates.KindVolume, props["boot_volume"])
		add("key_name", templates.KindKeypair, props["key_name"])
	case templates.KindSubnet, templates.KindPort:
		add("network", templates.KindNetwork, props["network"])
	case templates.KindVolumeAttachment:
		add("server", templates.KindServer, props["server"])
		add("volume", templates.KindVolume, props["volume"])
	}
	return out
}

// checkRef reports a literal reference the caller cannot use, unless it
// names one of the template's own resources of that kind (made by this
// apply, before what refers to it). Each reference is asked once per peer
// of the resources naming it.
func (pl *planner) checkRef(ctx context.Context, path string, kind templates.Kind, ref, peer string) {
	if pl.declared == nil {
		pl.declared = map[refKey]bool{}
		for _, inst := range pl.r.instances {
			var props map[string]any
			_ = json.Unmarshal([]byte(inst.Props), &props)
			if name, ok := props["name"].(string); ok && name != "" {
				pl.declared[refKey{inst.Kind, name, ""}] = true
			}
		}
	}
	if pl.declared[refKey{kind, ref, ""}] {
		return
	}
	k := refKey{kind, ref, peer}
	err, seen := pl.refs[k]
	if !seen {
		err = pl.e.Resources.Reference(ctx, pl.caller, kind, ref, peer)
		pl.refs[k] = err
	}
	switch {
	case err == nil:
	case errors.Is(err, resource.ErrAmbiguous):
		pl.bad(path, "%s", err.Error())
	case errors.Is(err, resource.ErrNotFound):
		pl.bad(path, "unknown %s %q", strings.ToLower(string(kind)), ref)
	default:
		// Not the template's fault (a peer did not answer): the apply
		// resolves it again, and fails then if it must.
		pl.e.log().WithError(err).WithFields(map[string]any{"kind": kind, "ref": ref}).Warn("plan: could not check a reference")
	}
}
