package object

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// PeerContainerPrefix begins the name of every container the broker makes
// on a peer ("cmx-" and a UUID), so the Reaper finds its own by it.
const PeerContainerPrefix = "cmx-"

// PeerPrefix begins the name of every container this installation makes
// on a peer: PeerContainerPrefix and, with a BrokerID, 8 hex digits of its
// hash and a dash, so installations sharing a peer project tell their
// containers apart.
func (s *Service) PeerPrefix() string {
	if s.BrokerID == "" {
		return PeerContainerPrefix
	}
	sum := sha256.Sum256([]byte(s.BrokerID))
	return PeerContainerPrefix + hex.EncodeToString(sum[:4]) + "-"
}

// Reaper is the garbage collector (a gc.Collector) of the object
// service's records, Swift's account reaper: once a project has been
// gone for Grace, its containers' objects are deleted from their peers,
// then the containers and their records, then its account record. A
// container record whose peer was removed from the registry (its data
// went with it) is dropped after the same grace. A peer that does not
// answer keeps its containers' records for the next pass, so no data is
// left on a peer without a record naming it.
//
// It also removes the peer-side containers no record names (orphans.go).
type Reaper struct {
	Service *Service
	// Owners returns the projects and the registered peers that exist.
	Owners func(ctx context.Context) (projects, peerIDs map[string]bool, err error)
	Grace  time.Duration

	mu   sync.Mutex
	seen map[string]time.Time // record key: first seen orphaned
}

// Name implements gc.Collector.
func (r *Reaper) Name() string { return "object-reaper" }

// Collect implements gc.Collector.
func (r *Reaper) Collect(ctx context.Context, now time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.Service
	cts, _, err := s.Store.List(ctx, containersRoot)
	if err != nil {
		return 0, err
	}
	accts, _, err := s.Store.List(ctx, accountsRoot)
	if err != nil {
		return 0, err
	}
	projects, peerIDs, err := r.Owners(ctx)
	if err != nil {
		return 0, err
	}
	seen := map[string]time.Time{}
	due := func(key string) bool {
		first, ok := r.seen[key]
		if !ok {
			first = now
		}
		seen[key] = first
		return now.Sub(first) >= r.Grace
	}
	removed := 0
	var errs []error
	live := map[string]bool{} // projects that still have container records
	for _, kv := range cts {
		ct, err := registry.DecodeJSON[Container](kv)
		if err != nil {
			continue
		}
		projectGone, peerGone := !projects[ct.Project], !peerIDs[ct.PeerID]
		if (!projectGone && !peerGone) || !due(kv.Key) {
			live[ct.Project] = true
			continue
		}
		if !peerGone {
			if err := r.empty(ctx, ct); err != nil {
				errs = append(errs, err)
				live[ct.Project] = true
				continue
			}
		}
		if err := s.deleteContainerRecord(ctx, ct.Project, ct.Name); err != nil {
			errs = append(errs, err)
			live[ct.Project] = true
			continue
		}
		delete(seen, kv.Key)
		removed++
	}
	for _, kv := range accts {
		project := strings.TrimSuffix(strings.TrimPrefix(kv.Key, accountsRoot), "/account")
		if projects[project] {
			continue
		}
		// Seen now even while its containers hold it, so the grace runs.
		if isDue := due(kv.Key); !isDue || live[project] {
			continue
		}
		if err := s.Store.Delete(ctx, kv.Key); err != nil && !errors.Is(err, registry.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		s.accountRecords().Deleted(kv.Key)
		delete(seen, kv.Key)
		removed++
	}
	n, err := r.collectOrphans(ctx, cts, peerIDs, due)
	removed += n
	errs = append(errs, err)
	r.seen = seen
	return removed, errors.Join(errs...)
}

// empty deletes every object of a gone project's container from its
// peer, then the container.
func (r *Reaper) empty(ctx context.Context, ct Container) error {
	s := r.Service
	objects, err := s.objects(ct)
	if err != nil {
		return fmt.Errorf("container %s of project %s: %w", ct.Name, ct.Project, err)
	}
	for {
		page, err := objects.ListObjects(ctx, ct.PeerContainer, peers.ObjectListOptions{Limit: 1000})
		if errors.Is(err, peers.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing container %s of project %s: %w", ct.Name, ct.Project, err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			if err := objects.DeleteObject(ctx, ct.PeerContainer, o.Name); err != nil && !errors.Is(err, peers.ErrNotFound) {
				return fmt.Errorf("deleting %s/%s of project %s: %w", ct.Name, o.Name, ct.Project, err)
			}
		}
	}
	if err := objects.DeleteContainer(ctx, ct.PeerContainer); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return fmt.Errorf("deleting container %s of project %s: %w", ct.Name, ct.Project, err)
	}
	s.usage.forget(ct.PeerContainer)
	s.Log.WithFields(logrus.Fields{"project": ct.Project, "container": ct.Name, "peer": ct.PeerID}).Info("reaped a gone project's container")
	return nil
}
