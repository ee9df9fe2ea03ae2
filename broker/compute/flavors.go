package compute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// mergedFlavors lists the flavors the pool offers, one per name: peers
// that share a size share its name (m1.small is m1.small everywhere), and
// the broker shows it with the ID of the first peer (by name) offering it.
// Peers that did not answer are returned in failed. Each peer's list
// comes from the servers service's flavor cache while it is fresh (a
// minute), so listing flavors does not ask every peer every time.
func (n *Nova) mergedFlavors(ctx context.Context) (flavors []peers.Flavor, failed []string, errs []error) {
	if n.Servers != nil {
		return mergeFlavors(n.Servers.cachedFlavors(ctx, n.connected(), false))
	}
	return mergeFlavors(gatherFlavors(ctx, n.connected(), n.peerTimeout()))
}

// gatherFlavors asks every member for its flavors, in parallel.
func gatherFlavors(ctx context.Context, members []*peers.Member, timeout time.Duration) []peers.Result[[]peers.Flavor] {
	return peers.Gather(ctx, members, timeout, func(ctx context.Context, m *peers.Member) ([]peers.Flavor, error) {
		return m.Cloud.ListFlavors(ctx)
	})
}

// mergeFlavors merges per-peer flavor lists as mergedFlavors describes.
func mergeFlavors(res []peers.Result[[]peers.Flavor]) (flavors []peers.Flavor, failed []string, errs []error) {
	seen := map[string]bool{}
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Member.Peer.Name)
			errs = append(errs, fmt.Errorf("peer %s: %w", r.Member.Peer.Name, r.Err))
			continue
		}
		for _, f := range r.Value {
			if !seen[f.Name] {
				seen[f.Name] = true
				flavors = append(flavors, f)
			}
		}
	}
	// Nova lists flavors by ID ascending, numerically where IDs are numbers.
	sort.Slice(flavors, func(i, j int) bool {
		a, b := flavors[i].ID, flavors[j].ID
		if len(a) != len(b) {
			return len(a) < len(b)
		}
		return a < b
	})
	return flavors, failed, errs
}

// flavorView renders a flavor at the request's microversion: 2.55 adds
// its description, 2.61 its extra specs (detail and show), and from 2.75
// swap is 0 rather than "".
func (n *Nova) flavorView(r *http.Request, f peers.Flavor, detail bool) map[string]any {
	self := identity.BaseURL(r) + "/compute/v2.1/flavors/" + f.ID
	v := map[string]any{
		"id": f.ID, "name": f.Name,
		"links": []map[string]string{{"rel": "self", "href": self}, {"rel": "bookmark", "href": self}},
	}
	if at(r, "2.55") {
		v["description"] = n.flavorDescription(r, f.ID)
	}
	if detail {
		var swap any = ""
		if at(r, "2.75") {
			swap = 0
		}
		v["vcpus"], v["ram"], v["disk"] = f.VCPUs, f.RAMMiB, f.DiskGiB
		v["OS-FLV-EXT-DATA:ephemeral"], v["swap"], v["rxtx_factor"] = f.EphemeralGiB, swap, 1.0
		v["os-flavor-access:is_public"], v["OS-FLV-DISABLED:disabled"] = f.IsPublic, false
		if at(r, "2.61") {
			specs := f.ExtraSpecs
			if specs == nil {
				specs = map[string]string{}
			}
			v["extra_specs"] = specs
		}
	}
	return v
}

// flavorDescription is a flavor's description as admins set it, or null.
func (n *Nova) flavorDescription(r *http.Request, id string) *string {
	if n.Servers == nil {
		return nil
	}
	d, err := n.Servers.FlavorDescription(r.Context(), id)
	if err != nil {
		n.Log.WithError(err).WithField("flavor", id).Warn("flavor description not read")
	}
	return d
}

// flavorSortKeys are the keys GET /flavors sorts by, with each flavor's
// value.
var flavorSortKeys = map[string]func(peers.Flavor) string{
	"flavorid": func(f peers.Flavor) string { return fmt.Sprintf("%20s", f.ID) }, "id": func(f peers.Flavor) string { return fmt.Sprintf("%20s", f.ID) },
	"name": func(f peers.Flavor) string { return f.Name }, "memory_mb": func(f peers.Flavor) string { return fmt.Sprintf("%012d", f.RAMMiB) },
	"root_gb": func(f peers.Flavor) string { return fmt.Sprintf("%012d", f.DiskGiB) }, "vcpus": func(f peers.Flavor) string { return fmt.Sprintf("%012d", f.VCPUs) },
	"ephemeral_gb": func(f peers.Flavor) string { return fmt.Sprintf("%012d", f.EphemeralGiB) },
	"is_public":    func(f peers.Flavor) string { return strconv.FormatBool(f.IsPublic) },
	"swap":         func(peers.Flavor) string { return "" }, "rxtx_factor": func(peers.Flavor) string { return "" },
	"disabled": func(peers.Flavor) string { return "" }, "vcpu_weight": func(peers.Flavor) string { return "" },
	"created_at": func(peers.Flavor) string { return "" }, "updated_at": func(peers.Flavor) string { return "" },
	"description": func(peers.Flavor) string { return "" },
}

// filterFlavors applies GET /flavors' parameters: minRam, minDisk,
// is_public (a member sees public flavors only), sort_key and sort_dir,
// marker and limit. An unknown parameter is refused from 2.75.
func filterFlavors(r *http.Request, flavors []peers.Flavor) ([]peers.Flavor, error) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "minRam", "minDisk", "is_public", "sort_key", "sort_dir", "limit", "marker":
		default:
			if at(r, "2.75") {
				return nil, invalid(k, "Invalid input for query parameters %s. Additional properties are not allowed ('%s' was unexpected)", k, k)
			}
		}
	}
	atLeast := func(k string) (int, error) {
		if q.Get(k) == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(q.Get(k))
		if err != nil || n < 0 {
			return 0, invalid(k, "Invalid input for query parameters %s. Value: %s. It must be a non-negative integer", k, q.Get(k))
		}
		return n, nil
	}
	minRAM, err1 := atLeast("minRam")
	minDisk, err2 := atLeast("minDisk")
	limit, err3 := atLeast("limit")
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	public := "" // every flavor the pool offers, unless an admin narrows it
	if isAdmin(r) {
		public = strings.ToLower(q.Get("is_public"))
	}
	out := slices.DeleteFunc(slices.Clone(flavors), func(f peers.Flavor) bool {
		pub, known := jsonBool([]byte(public))
		return f.RAMMiB < minRAM || f.DiskGiB < minDisk || known && f.IsPublic != pub && public != "none"
	})
	if k := q.Get("sort_key"); k != "" {
		key, ok := flavorSortKeys[k]
		if !ok {
			return nil, invalid("sort_key", "Invalid input for query parameters sort_key. Value: %s. It is not a sort key", k)
		}
		desc := q.Get("sort_dir") == "desc"
		slices.SortStableFunc(out, func(a, b peers.Flavor) int {
			if desc {
				return strings.Compare(key(b), key(a))
			}
			return strings.Compare(key(a), key(b))
		})
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(out, func(f peers.Flavor) bool { return f.ID == m })
		if i < 0 {
			return nil, invalid("marker", "marker [%s] not found", m)
		}
		out = out[i+1:]
	}
	if limit > 0 && limit < len(out) {
		out = out[:limit]
	}
	return out, nil
}

func (n *Nova) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flavors, failed, errs := n.mergedFlavors(r.Context())
		osapi.FlagPartial(w, r, n.Log, "flavors", failed, errors.Join(errs...))
		flavors, err := filterFlavors(r, flavors)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		out := make([]map[string]any, 0, len(flavors))
		for _, f := range flavors {
			out = append(out, n.flavorView(r, f, detail))
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"flavors": out})
	}
}

// updateFlavor answers PUT /flavors/{id} (2.55, cloud admins): the
// description is the one thing it changes, as in Nova.
func (n *Nova) updateFlavor(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Flavor *struct {
			Description optionalString `json:"description"`
		} `json:"flavor"`
	}
	raw, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(raw, &req)
	}
	if err != nil || req.Flavor == nil || !req.Flavor.Description.Set {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute flavor: expected {"flavor": {"description": ...}}`)
		return
	}
	n.findFlavor(w, r, func(f peers.Flavor) {
		if err := n.Servers.SetFlavorDescription(r.Context(), caller(r), f.ID, req.Flavor.Description.Value); err != nil {
			n.writeError(w, r, err)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"flavor": n.flavorView(r, f, true)})
	})
}

// findFlavor answers for one flavor of the merged list, or 404.
func (n *Nova) findFlavor(w http.ResponseWriter, r *http.Request, answer func(peers.Flavor)) {
	id := chi.URLParam(r, "id")
	flavors, failed, errs := n.mergedFlavors(r.Context())
	osapi.FlagPartial(w, r, n.Log, "flavors", failed, errors.Join(errs...))
	for _, f := range flavors {
		if f.ID == id {
			answer(f)
			return
		}
	}
	osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Flavor %s could not be found.", id))
}

func (n *Nova) showFlavor(w http.ResponseWriter, r *http.Request) {
	n.findFlavor(w, r, func(f peers.Flavor) {
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"flavor": n.flavorView(r, f, true)})
	})
}

func (n *Nova) flavorExtraSpecs(w http.ResponseWriter, r *http.Request) {
	n.findFlavor(w, r, func(f peers.Flavor) {
		specs := f.ExtraSpecs
		if specs == nil {
			specs = map[string]string{}
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": specs})
	})
}

// zones lists one availability zone per peer, so --availability-zone pins
// a server to a peer. Only admins see the detail (hosts and heartbeats).
func (n *Nova) zones(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out := []map[string]any{}
		for _, m := range n.Pool.Members() {
			z := map[string]any{"zoneName": m.Peer.Name, "zoneState": map[string]bool{"available": m.Usable()}, "hosts": nil}
			if detail {
				z["hosts"] = map[string]any{m.Peer.Name: map[string]any{"nova-compute": map[string]any{
					"available": m.Usable(), "active": m.Cloud != nil, "updated_at": m.Peer.LastHeartbeat,
				}}}
			}
			out = append(out, z)
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
	}
}
