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
				if kind != "image" {
					if derr := deleteOrphan(ctx, f.member, kind, f.peerResourceID); derr != nil {
						failed = append(failed, fmt.Sprintf("%s: removing a half-made %s: %s", r.Member.Peer.Name, kind, faults.Reason(derr)))
						causes = append(causes, derr)
					}
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

// listMarked lists one kind on one peer.
func listMarked(ctx context.Context, m *peers.Member, kind string, opts peers.ListOptions) ([]marked, error) {
	var out []marked
	add := func(peerID string, meta map[string]string) {
		if id := meta[peers.MetaID]; id != "" {
			out = append(out, marked{member: m, id: id, peerResourceID: peerID})
		}
	}
	c := m.Cloud
	switch kind {
	case "server":
		l, err := c.ListServers(ctx, opts)
		for _, x := range l {
			if x.Status != peers.ServerDeleted {
				add(x.ID, x.Metadata)
			}
		}
		return out, err
	case "volume":
		l, err := c.ListVolumes(ctx, opts)
		for _, x := range l {
			add(x.ID, x.Metadata)
		}
		return out, err
	case "network":
		l, err := c.ListNetworks(ctx, opts)
		for _, x := range l {
			add(x.ID, x.Metadata)
		}
		return out, err
	case "subnet":
		l, err := c.ListSubnets(ctx, opts)
		for _, x := range l {
			add(x.ID, x.Metadata)
		}
		return out, err
	case "port":
		l, err := c.ListPorts(ctx, opts)
		for _, x := range l {
			add(x.ID, x.Metadata)
		}
		return out, err
	case "image":
		l, err := c.ListImages(ctx, opts)
		for _, x := range l {
			add(x.ID, x.Properties)
		}
		return out, err
	}
	return nil, fmt.Errorf("index: no marked %ss to look for", kind)
}

// deleteOrphan removes a half-made resource from its peer.
func deleteOrphan(ctx context.Context, m *peers.Member, kind, peerID string) error {
	var err error
	switch kind {
	case "server":
		err = m.Cloud.DeleteServer(ctx, peerID)
	case "volume":
		err = m.Cloud.DeleteVolume(ctx, peerID)
	case "network":
		err = m.Cloud.DeleteNetwork(ctx, peerID)
	case "subnet":
		err = m.Cloud.DeleteSubnet(ctx, peerID)
	case "port":
		err = m.Cloud.DeletePort(ctx, peerID)
	}
	if errors.Is(err, peers.ErrNotFound) {
		return nil
	}
	return err
}
