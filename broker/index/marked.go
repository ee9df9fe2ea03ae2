package index

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
)

// marked is one resource a peer holds that carries the marks asked for.
type marked struct {
	member         *peers.Member
	id             string // its broker ID (peers.MetaID)
	peerResourceID string
}

// Marked finds, on members, the resources of kind (server, volume,
// network, subnet, port or image) that carry marks besides brokerID's and
// project's own: the resources a service created for a caller who tagged
// them (the deployment engine marks each with its deployment and
// resource). Those the index holds for project are returned by broker ID,
// sorted. The others carry our marks but no entry: a create whose broker
// died between the peer's answer and the index write. Nobody was told of
// them and nothing counts them, so they are deleted from their peer (an
// image is left to the index rebuild: its staged copies carry its marks)
// rather than returned, and a retried create makes the resource afresh.
// A peer that cannot be listed is an error wrapping peers.ErrUnavailable:
// a caller must not take "none found" for "none there".
func (x *Index) Marked(ctx context.Context, members []*peers.Member, brokerID, kind, project string, marks map[string]string, perPeer time.Duration) ([]string, error) {
	want := maps.Clone(marks)
	if want == nil {
		want = map[string]string{}
	}
	want[peers.MetaBrokerID], want[peers.MetaProject] = brokerID, project
	res := peers.Gather(ctx, members, perPeer, func(ctx context.Context, m *peers.Member) ([]marked, error) {
		return listMarked(ctx, m, kind, peers.ListOptions{Metadata: want})
	})
	var out, failed []string
	var causes []error
	for _, r := range res {
		if r.Err != nil {
			// The peer's own text is for the log (the cause); callers'
			// tenants read only the kind of failure.
			failed = append(failed, fmt.Sprintf("%s: %s", r.Member.Peer.Name, faults.Reason(r.Err)))
			causes = append(causes, r.Err)
			continue
		}
		for _, f := range r.Value {
			e, err := x.Get(ctx, kind, f.id, project)
			switch {
			case err == nil && e.PeerID == f.member.Peer.ID && e.PeerResourceID == f.peerResourceID:
				out = append(out, f.id)
			case err == nil || errors.Is(err, ErrNotFound):
				if derr := deleteOrphan(ctx, f.member, kind, f.peerResourceID); derr != nil {
					failed = append(failed, fmt.Sprintf("%s: removing a half-made %s: %s", r.Member.Peer.Name, kind, faults.Reason(derr)))
					causes = append(causes, derr)
				}
			default:
				return nil, err
			}
		}
	}
	if len(failed) > 0 {
		err := fmt.Errorf("looking for marked %ss: %s: %w", kind, strings.Join(failed, "; "), peers.ErrUnavailable)
		return nil, faults.WithCause(err, errors.Join(causes...))
	}
	sort.Strings(out)
	return out, nil
}

// listMarked lists one kind on one peer: the resources carrying a
// broker ID (a server its peer is deleting is gone already).
func listMarked(ctx context.Context, m *peers.Member, kind string, opts peers.ListOptions) ([]marked, error) {
	k, ok := peerKinds[kind]
	if !ok {
		return nil, fmt.Errorf("index: no marked %ss to look for", kind)
	}
	l, err := k.list(ctx, m.Cloud, opts)
	var out []marked
	for _, h := range l {
		if id := h.meta[peers.MetaID]; id != "" && !h.deleted {
			out = append(out, marked{member: m, id: id, peerResourceID: h.peerID})
		}
	}
	return out, err
}

// deleteOrphan removes a half-made resource from its peer (an image is
// left to the index rebuild).
func deleteOrphan(ctx context.Context, m *peers.Member, kind, peerID string) error {
	k := peerKinds[kind]
	if k.remove == nil {
		return nil
	}
	if err := k.remove(m.Cloud, ctx, peerID); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return err
	}
	return nil
}
