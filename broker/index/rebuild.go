package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Found is one resource a peer holds that carries this installation's
// marks: enough to index it.
type Found struct {
	Kind           string
	ID             string // the broker-wide ID, from peers.MetaID
	Project        string // from peers.MetaProject
	PeerResourceID string
	Name           string
	CreatedAt      time.Time
}

// RebuildReport says what a rebuild changed, per kind.
type RebuildReport struct {
	// Added are entries written for marked resources the index lacked.
	Added map[string]int `json:"added"`
	// Removed are entries dropped because their peer answered a full list
	// without the resource.
	Removed map[string]int `json:"removed"`
	// Kept are entries that matched a resource on their peer.
	Kept map[string]int `json:"kept"`
	// Conflicts are marked resources whose broker ID is already indexed
	// to another peer or peer resource: left alone for an admin to judge.
	Conflicts []string `json:"conflicts,omitempty"`
	// FailedPeers could not be listed; their entries were left untouched.
	FailedPeers map[string]string `json:"failed_peers,omitempty"`
}

// Scan lists the resources on one peer that carry brokerID's marks. A
// peer that fails any list fails as a whole, so the caller never mistakes
// a partial answer for the peer's full contents.
func Scan(ctx context.Context, cloud peers.Cloud, brokerID string) ([]Found, error) {
	opts := peers.ListOptions{Metadata: map[string]string{peers.MetaBrokerID: brokerID}}
	var out []Found
	for _, kind := range RebuiltKinds {
		l, err := peerKinds[kind].list(ctx, cloud, opts)
		if err != nil {
			return nil, fmt.Errorf("list %ss: %w", kind, err)
		}
		for _, h := range l {
			if h.meta[peers.MetaID] == "" || h.meta[peers.MetaProject] == "" {
				continue // marked by an older broker that did not record IDs
			}
			out = append(out, Found{Kind: kind, ID: h.meta[peers.MetaID], Project: h.meta[peers.MetaProject],
				PeerResourceID: h.peerID, Name: h.name, CreatedAt: h.createdAt})
		}
	}
	return out, nil
}

// RebuildGrace is how old an entry must be before Rebuild may remove it
// for want of its resource: a create lists nothing until it is done, and
// replicas' clocks differ.
const RebuildGrace = 2 * time.Minute

// RebuiltKinds are the kinds Rebuild reconciles; entries of other kinds
// are never touched by it.
var RebuiltKinds = []string{"server", "volume", "image", "network", "subnet", "port", "snapshot", "router", "floatingip"}

// Rebuild reconciles the index with what the peers hold: a marked
// resource the index lacks is added (a broker that crashed between the
// peer's create and its index write), and an entry whose peer listed its
// resources in full without it is removed. Peers that cannot be listed
// within perPeer keep their entries as they are: absence of an answer is
// not absence of the resource.
func (x *Index) Rebuild(ctx context.Context, members []*peers.Member, brokerID string, perPeer time.Duration) (RebuildReport, error) {
	rep := RebuildReport{Added: map[string]int{}, Removed: map[string]int{}, Kept: map[string]int{}, FailedPeers: map[string]string{}}
	// Entries written after this (less a margin for clocks of other
	// replicas) may name resources created after their peer was listed.
	youngest := time.Now().Add(-RebuildGrace)
	var connected []*peers.Member
	for _, m := range members {
		if m.Cloud == nil {
			rep.FailedPeers[m.Peer.Name] = "not connected"
			continue
		}
		connected = append(connected, m)
	}
	results := peers.Gather(ctx, connected, perPeer, func(ctx context.Context, m *peers.Member) ([]Found, error) {
		return Scan(ctx, m.Cloud, brokerID)
	})
	// seen[peerID][kind][peerResourceID] for every peer that answered.
	seen := map[string]map[string]map[string]bool{}
	for _, res := range results {
		if res.Err != nil {
			rep.FailedPeers[res.Member.Peer.Name] = res.Err.Error()
			continue
		}
		held := map[string]map[string]bool{}
		for _, f := range res.Value {
			if held[f.Kind] == nil {
				held[f.Kind] = map[string]bool{}
			}
			held[f.Kind][f.PeerResourceID] = true
		}
		seen[res.Member.Peer.ID] = held
	}
	var errs []error
	// Removals first, so a marked resource whose ID was indexed to a
	// resource that no longer exists is adopted in the same pass.
	for _, kind := range RebuiltKinds {
		entries, err := x.List(ctx, kind, "")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			held, answered := seen[e.PeerID]
			switch {
			case !answered:
				// The peer failed, is gone from the pool, or was never
				// asked: keep the entry; a peer removal is the admin's call.
			case held[kind][e.PeerResourceID]:
				rep.Kept[kind]++
			case e.IndexedAt.After(youngest):
				// Possibly created after the scan listed its peer.
			default:
				if err := x.removeIfUnchanged(ctx, e); err != nil {
					errs = append(errs, err)
					continue
				}
				rep.Removed[kind]++
			}
		}
	}
	for _, res := range results {
		if res.Err != nil {
			continue
		}
		peerID := res.Member.Peer.ID
		for _, f := range res.Value {
			e, err := x.Get(ctx, f.Kind, f.ID, "")
			switch {
			case errors.Is(err, ErrNotFound):
				err = x.Put(ctx, Entry{Kind: f.Kind, ID: f.ID, Project: f.Project, PeerID: peerID,
					PeerResourceID: f.PeerResourceID, Name: f.Name, CreatedAt: f.CreatedAt})
				if errors.Is(err, registry.ErrConflict) {
					continue // another resource took the ID meanwhile; the next pass judges it
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				rep.Added[f.Kind]++
			case err != nil:
				errs = append(errs, err)
			case e.PeerID != peerID || e.PeerResourceID != f.PeerResourceID || e.Project != f.Project:
				// Images are staged under one ID on several peers; the
				// index names the home copy, so a replica is no conflict.
				if f.Kind != "image" {
					rep.Conflicts = append(rep.Conflicts, fmt.Sprintf("%s %s on peer %s (indexed on %s as %s)",
						f.Kind, f.ID, res.Member.Peer.Name, e.PeerID, e.PeerResourceID))
				}
			}
		}
	}
	return rep, errors.Join(errs...)
}

// removeIfUnchanged deletes an entry unless it was replaced meanwhile.
// An entry with the same peer resource is the one the rebuild judged. Of
// a rebuild and a delete (or two rebuilds) removing one entry at once,
// only the one whose Remove took it frees its charge.
func (x *Index) removeIfUnchanged(ctx context.Context, e Entry) error {
	cur, err := x.Get(ctx, e.Kind, e.ID, "")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.PeerID != e.PeerID || cur.PeerResourceID != e.PeerResourceID {
		return nil
	}
	gone, removed, err := x.Remove(ctx, cur)
	if removed && x.freer != nil && len(gone.Charge) > 0 {
		if ferr := x.freer.Free(context.WithoutCancel(ctx), quota.Scope{Project: gone.Project}, gone.Charge); ferr != nil {
			err = errors.Join(err, fmt.Errorf("freeing the quota of %s %s: %w", gone.Kind, gone.ID, ferr))
		}
	}
	return err
}
