package object

import (
	"context"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// orphanPage is how many peer container names one listing call asks for.
const orphanPage = 1000

// collectOrphans removes the containers on the registered peers that this
// installation named (Service.PeerPrefix) but no container record names: a
// broker that died between a container's create on its peer and the
// record's write leaves one, empty (nothing is written to a container
// without its record). cts are the records listed at the start of the
// pass, before the peers are: a container made after that listing looks
// orphaned in this pass, so a container goes only once it has been seen
// orphaned for the grace (due), on later passes that list the records
// afresh, and only while empty (the peer refuses to delete one holding
// objects: it is logged and kept, never emptied, since whose data it is
// cannot be told). Orphans are removed, not adopted: the tenant's name of
// the container was never recorded anywhere.
func (r *Reaper) collectOrphans(ctx context.Context, cts []registry.KV, peerIDs map[string]bool, due func(string) bool) (int, error) {
	named := map[string]map[string]bool{} // peer ID -> peer container names with a record
	for _, kv := range cts {
		ct, err := registry.DecodeJSON[Container](kv)
		if err != nil {
			continue
		}
		if named[ct.PeerID] == nil {
			named[ct.PeerID] = map[string]bool{}
		}
		named[ct.PeerID][ct.PeerContainer] = true
	}
	removed := 0
	var errs []error
	for id := range peerIDs {
		m, ok := r.Service.Pool.Get(id)
		if !ok || m.Cloud == nil {
			continue
		}
		objects, ok := m.Cloud.(peers.Objects)
		if !ok {
			continue
		}
		marker := ""
		for {
			page, err := objects.ListContainers(ctx, r.Service.PeerPrefix(), marker, orphanPage)
			if err != nil {
				errs = append(errs, fmt.Errorf("listing the containers of peer %s: %w", m.Peer.Name, err))
				break
			}
			for _, name := range page {
				if named[id][name] || !due("orphan/"+id+"/"+name) {
					continue
				}
				n, err := r.removeOrphan(ctx, m.Peer.Name, objects, name)
				removed += n
				errs = append(errs, err)
			}
			if len(page) < orphanPage {
				break
			}
			marker = page[len(page)-1]
		}
	}
	return removed, errors.Join(errs...)
}

// removeOrphan deletes one orphaned peer container if it is empty.
func (r *Reaper) removeOrphan(ctx context.Context, peer string, objects peers.Objects, name string) (int, error) {
	log := r.Service.Log.WithFields(logrus.Fields{"peer": peer, "peer_container": name})
	switch err := objects.DeleteContainer(ctx, name); {
	case err == nil:
		log.Info("removed a container no record names (left by a create cut short)")
		return 1, nil
	case errors.Is(err, peers.ErrNotFound):
		return 0, nil
	case errors.Is(err, peers.ErrConflict):
		log.Warn("a container no record names holds objects: kept for an operator")
		return 0, nil
	default:
		return 0, fmt.Errorf("removing orphaned container %s of peer %s: %w", name, peer, err)
	}
}
