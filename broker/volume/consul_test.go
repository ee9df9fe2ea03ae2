package volume_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// TestVolumeQuotaTwoBrokersOnConsul: two brokers (each its own Consul
// client, index and ledger) over one Consul agent and one cloud take ten
// concurrent creates, half each, against a limit of 3: exactly 3 volumes
// are made, whichever broker made them.
func TestVolumeQuotaTwoBrokersOnConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	agent := consultest.Start(t)
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	var ledger *quota.Ledger
	e := brokertest.New(t, []brokertest.Peer{{Name: "big", DiskGiB: 500}}, func(e *brokertest.Env, r chi.Router) {
		for _, b := range []string{"a", "b"} {
			store, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "voltest/"}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			l := quota.NewLedger(store, "broker-"+b, e.Log)
			if ledger == nil {
				ledger = l
			}
			svc := &volume.Service{Pool: e.Pool, Index: index.New(store), Placer: policy.Default{}, Store: store, Log: e.Log,
				BrokerID: "test-broker", Quota: l}
			cinder := &volume.Cinder{Volumes: svc, QuotaAdmin: l.Limits.(*quota.Limits), Auth: e.Keystone.Authenticate, Log: e.Log}
			r.Route("/volume-"+b, cinder.Routes)
		}
		e.Keystone.Catalog = identity.StaticCatalog([]identity.ServiceEntry{identity.DefaultServices[0], {Type: "volumev3", Name: "cinderv3", Path: "/volume-a/v3"}})
	})
	ctx := context.Background()
	pw := e.Member(t, "vera", "quota-p", identity.RoleMember)
	p, err := e.Dir.FindProject(ctx, identity.DefaultDomainID, "quota-p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quotasets.Update(ctx, client(t, e, "admin", brokertest.AdminPassword, "admin"), p.ID, quotasets.UpdateOpts{Volumes: intp(3)}).Extract(); err != nil {
		t.Fatal(err)
	}
	a := client(t, e, "vera", pw, "quota-p")
	b := *a
	b.Endpoint = strings.Replace(a.Endpoint, "/volume-a/", "/volume-b/", 1)
	b.ResourceBase = strings.Replace(a.ResourceBase, "/volume-a/", "/volume-b/", 1)

	var wg sync.WaitGroup
	var mu sync.Mutex
	made, refused := 0, 0
	for i := range 10 {
		c := a
		if i%2 == 1 {
			c = &b
		}
		wg.Go(func() {
			_, err := volumes.Create(ctx, c, volumes.CreateOpts{Size: 1}, nil).Extract()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made++
			case gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if made != 3 || refused != 7 {
		t.Fatalf("%d made, %d refused; want 3 and 7", made, refused)
	}
	used, reserved, err := ledger.Usage(ctx, quota.Scope{Project: p.ID})
	if err != nil || used[quota.Volumes] != 3 || len(reserved) != 0 {
		t.Fatalf("usage %v, reserved %v, %v", used, reserved, err)
	}
	for _, c := range []*gophercloud.ServiceClient{a, &b} {
		pages, err := volumes.List(c, volumes.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if vs, _ := volumes.ExtractVolumes(pages); len(vs) != 3 {
			t.Fatalf("%s lists %d volumes, want the 3 both brokers made", c.Endpoint, len(vs))
		}
	}
}
