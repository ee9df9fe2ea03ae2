package compute

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
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

func flavorView(r *http.Request, f peers.Flavor, detail bool) map[string]any {
	self := identity.BaseURL(r) + "/compute/v2.1/flavors/" + f.ID
	v := map[string]any{
		"id": f.ID, "name": f.Name,
		"links": []map[string]string{{"rel": "self", "href": self}, {"rel": "bookmark", "href": self}},
	}
	if detail {
		v["vcpus"], v["ram"], v["disk"] = f.VCPUs, f.RAMMiB, f.DiskGiB
		v["OS-FLV-EXT-DATA:ephemeral"], v["swap"], v["rxtx_factor"] = f.EphemeralGiB, "", 1.0
		v["os-flavor-access:is_public"], v["OS-FLV-DISABLED:disabled"] = f.IsPublic, false
	}
	return v
}

func (n *Nova) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		flavors, failed, errs := n.mergedFlavors(r.Context())
		osapi.FlagPartial(w, r, n.Log, "flavors", failed, errors.Join(errs...))
		out := make([]map[string]any, 0, len(flavors))
		for _, f := range flavors {
			out = append(out, flavorView(r, f, detail))
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"flavors": out})
	}
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
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"flavor": flavorView(r, f, true)})
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
