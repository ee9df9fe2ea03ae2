package policyapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// recordPool is the pool with each member's record read from the
// registry, as the broker's pool holds them once its snapshot catches up
// (the test environment does not run the pool's reconcile loop).
type recordPool struct {
	pool *peers.Pool
	reg  *registry.PeerRegistry
	t    *testing.T
}

func (p recordPool) member(m *peers.Member) *peers.Member {
	rec, err := p.reg.Get(p.t.Context(), m.Peer.ID)
	if err != nil {
		p.t.Error(err)
		return m
	}
	cp := *m
	cp.Peer = rec
	return &cp
}

func (p recordPool) Members() []*peers.Member {
	var out []*peers.Member
	for _, m := range p.pool.Members() {
		out = append(out, p.member(m))
	}
	return out
}

func (p recordPool) Get(id string) (*peers.Member, bool) {
	m, ok := p.pool.Get(id)
	if !ok {
		return nil, false
	}
	return p.member(m), true
}

// TestCinderWithEngine: the engine as Cinder's Placer (what serve will
// wire). Volumes go to the private peer; once its disk is full its create
// fails and Cinder falls back to the next peer in the policy's order, the
// cheapest public one. A volume nothing can hold is refused with the
// stock policy's reasons. Every decision is recorded.
func TestCinderWithEngine(t *testing.T) {
	h := &harness{}
	h.env = brokertest.New(t, []brokertest.Peer{{Name: "private", DiskGiB: 20}, {Name: "cheap", DiskGiB: 1000}, {Name: "dear", DiskGiB: 1000}},
		func(e *brokertest.Env, r chi.Router) {
			h.versions, h.decisions = policy.NewVersions(e.Store), policy.NewDecisions(e.Store, 0, 0)
			eng, err := policy.NewEngine(e.Ctx, policy.EngineConfig{Versions: h.versions, Decisions: h.decisions, Log: e.Log})
			if err != nil {
				t.Fatal(err)
			}
			h.engine = eng
			// Placement, not the quota, refuses here: no volume limits.
			unlimited := &quota.Ledger{Store: e.Store, Limits: &quota.Limits{Store: e.Store, Default: quota.Amounts{quota.Volumes: -1, quota.Gigabytes: -1}}, Log: e.Log}
			svc := &volume.Service{Pool: recordPool{e.Pool, registry.NewPeerRegistry(e.Store), t}, Index: e.Index, Placer: eng,
				Store: e.Store, Log: e.Log, BrokerID: "test-broker", Quota: unlimited}
			cinder := &volume.Cinder{Volumes: svc, Auth: e.Keystone.Authenticate, Log: e.Log}
			r.Route("/volume", cinder.Routes)
		})
	reg := registry.NewPeerRegistry(h.env.Store)
	for name, labels := range map[string]map[string]string{
		"private": {"tier": "private"}, "cheap": {"tier": "public", "cost": "0.05"}, "dear": {"tier": "public", "cost": "0.40"},
	} {
		p, err := reg.Get(h.env.Ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		p.Labels = labels
		if _, err := reg.Update(h.env.Ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	provider := h.env.Provider(t, "alice", h.env.Member(t, "alice", "proj-a", "member"), "proj-a")
	c, err := openstack.NewBlockStorageV3(provider, gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for range 6 {
		v, err := volumes.Create(h.env.Ctx, c, volumes.CreateOpts{Size: 5, Name: "data"}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, v.AvailabilityZone)
	}
	if got := strings.Join(zones, ","); got != "private,private,private,private,cheap,cheap" {
		t.Fatalf("volumes landed on %s", got)
	}
	_, err = volumes.Create(h.env.Ctx, c, volumes.CreateOpts{Size: 5000, Name: "huge"}, nil).Extract()
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &unexpected) || unexpected.Actual != http.StatusRequestEntityTooLarge || !strings.Contains(string(unexpected.Body), "needs 5000 GiB of disk") {
		t.Fatalf("huge volume: %v, want 413 with the policy's reasons", err)
	}
	recs, err := h.decisions.Query(h.env.Ctx, policy.Query{})
	if err != nil || len(recs) != 7 {
		t.Fatalf("%d decisions recorded (%v), want 7", len(recs), err)
	}
	if len(recs[0].Order) != 0 || recs[0].Kind != "volume" {
		t.Fatalf("the refused volume's decision = %+v, want no peer allowed", recs[0])
	}
}
