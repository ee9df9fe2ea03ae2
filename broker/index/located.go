package index

import (
	"context"
	"errors"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
)

// Pool is the part of peers.Pool the index's lookups read.
type Pool interface {
	Get(id string) (*peers.Member, bool)
}

// ErrNotConnected: the peer holding an entry's resource is not connected,
// or has left the pool; the resource cannot be reached now.
var ErrNotConnected = errors.New("index: the resource's peer is not connected")

// Its text is an internal name: faults cuts it from what a tenant reads.
var _ = faults.Register(ErrNotConnected)

// Locate returns project's entry of kind and id and the connected peer
// holding its resource: ErrNotFound when the project has no such resource
// (another project's is not found either), ErrNotConnected when its peer
// is not connected. The services word both in their APIs' terms.
func (x *Index) Locate(ctx context.Context, pool Pool, kind, id, project string) (Entry, *peers.Member, error) {
	e, err := x.Get(ctx, kind, id, project)
	if err != nil {
		return e, nil, err
	}
	m, ok := pool.Get(e.PeerID)
	if !ok || m.Cloud == nil {
		return e, nil, ErrNotConnected
	}
	return e, m, nil
}

// Spread is a list's entries by the peer holding their resources, for a
// list that asks only those peers.
type Spread struct {
	byPeer map[string]map[string]Entry // peer ID -> peer resource ID -> entry
	// Members are the connected peers holding some of the resources.
	Members []*peers.Member
	// Failed names the other peers holding some (by name; by ID once gone
	// from the pool): their resources cannot be listed now.
	Failed []string
}

// SpreadOver groups entries by the peer holding their resources.
func SpreadOver(entries []Entry, pool Pool) Spread {
	s := Spread{byPeer: map[string]map[string]Entry{}}
	for _, e := range entries {
		if s.byPeer[e.PeerID] == nil {
			s.byPeer[e.PeerID] = map[string]Entry{}
		}
		s.byPeer[e.PeerID][e.PeerResourceID] = e
	}
	for peerID := range s.byPeer {
		switch m, ok := pool.Get(peerID); {
		case ok && m.Cloud != nil:
			s.Members = append(s.Members, m)
		case ok:
			s.Failed = append(s.Failed, m.Peer.Name)
		default:
			s.Failed = append(s.Failed, peerID) // the peer left the pool: only its ID is known
		}
	}
	return s
}

// Entry returns the entry of a resource m listed, if it is one of the
// spread's entries.
func (s Spread) Entry(m *peers.Member, peerResourceID string) (Entry, bool) {
	e, ok := s.byPeer[m.Peer.ID][peerResourceID]
	return e, ok
}

// PeerKey names a resource by its peer and the peer's ID for it, as
// BrokerIDs keys them.
func PeerKey(peerID, peerResourceID string) string { return peerID + "/" + peerResourceID }

// BrokerIDs maps entries' resources by PeerKey to their broker IDs: how a
// service shows, by broker ID, the resources a peer's resource names (a
// server's volumes, a volume's attachments).
func BrokerIDs(entries []Entry) map[string]string {
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[PeerKey(e.PeerID, e.PeerResourceID)] = e.ID
	}
	return out
}
