package deploy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// need sums what the plan's creates and replaces take from the project's
// quota: every server (a counted resource's every replica) with its
// flavor's cores and ram and the ports its peer makes for its NICs on
// networks, every volume and its gigabytes, every network, subnet and
// port, and the user's keypairs. A replace counts in full: the
// old instance stays until the new one is made.
func (pl *planner) need(ctx context.Context, plan *Plan) resource.Usage {
	out := resource.Usage{}
	for _, st := range plan.Steps {
		if st.Action != ActCreate && st.Action != ActReplace {
			continue
		}
		var p props
		_ = json.Unmarshal([]byte(st.Props), &p)
		switch st.Kind {
		case templates.KindServer:
			out["instances"]++
			if f, ok := pl.anyFlavor(ctx, p.str("flavor")); ok {
				out["cores"] += f.VCPUs
				out["ram"] += f.RAMMiB
			}
			// The port its peer makes for each NIC on a network (a NIC
			// on a port is that port, counted as such).
			nets, _ := p["networks"].([]any)
			for _, n := range nets {
				if m, ok := n.(map[string]any); ok && m["network"] != nil && m["port"] == nil {
					out["ports"]++
				}
			}
		case templates.KindVolume:
			out["volumes"]++
			size := p.num("size")
			if img := p.str("image"); size == 0 && img != "" && !isSymbol(img) {
				if i, err := pl.e.Resources.Image(ctx, pl.caller, img); err == nil {
					size = max(i.MinDiskGiB, int((i.SizeBytes+(1<<30)-1)>>30), 1)
				}
			}
			out["gigabytes"] += size
		case templates.KindNetwork:
			out["networks"]++
		case templates.KindSubnet:
			out["subnets"]++
		case templates.KindPort:
			out["ports"]++
		case templates.KindKeypair:
			out["key_pairs"]++
		}
	}
	return out
}

// checkQuota fails a plan whose creates do not fit the project's quota,
// naming the resource and the numbers. It is a preview: the services
// reserve each resource as it is made, so concurrent deployments can
// still never pass a limit together.
func (pl *planner) checkQuota(ctx context.Context, plan *Plan) error {
	need := pl.need(ctx, plan)
	if len(need) == 0 {
		return nil
	}
	if err := pl.e.Resources.CheckQuota(ctx, pl.caller, need); err != nil {
		return fmt.Errorf("%w: %w", ErrQuota, err)
	}
	return nil
}
