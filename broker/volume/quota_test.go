package volume_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
)

// quotaEnv serves Keystone and Cinder (with os-quota-sets) over one
// roomy peer; the catalog lists only those, so the CLI asks nothing else.
type quotaEnv struct {
	*brokertest.Env
	ledger *quota.Ledger
}

func newQuotaEnv(t *testing.T) *quotaEnv {
	t.Helper()
	qe := &quotaEnv{}
	qe.Env = brokertest.New(t, []brokertest.Peer{{Name: "big", DiskGiB: 500}}, func(e *brokertest.Env, r chi.Router) {
		qe.ledger = quota.NewLedger(e.Store, "test-broker", e.Log)
		svc := &volume.Service{Pool: e.Pool, Index: index.New(e.Store), Placer: policy.Default{}, Store: e.Store, Log: e.Log,
			BrokerID: "test-broker", Quota: qe.ledger}
		cinder := &volume.Cinder{Volumes: svc, QuotaAdmin: qe.ledger.Limits.(*quota.Limits), Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", cinder.Routes)
		e.Keystone.Catalog = identity.StaticCatalog([]identity.ServiceEntry{identity.DefaultServices[0], {Type: "volumev3", Name: "cinderv3", Path: "/volume/v3"}})
	})
	return qe
}

// project returns the ID of a project by name.
func (qe *quotaEnv) project(t *testing.T, name string) string {
	t.Helper()
	p, err := qe.Dir.FindProject(qe.Ctx, identity.DefaultDomainID, name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func intp(n int) *int { return &n }

// TestVolumeQuotaReservations: ten concurrent creates against a limit of
// 3 make exactly 3 volumes, the others refused with Cinder's 413; two
// concurrent deletes of one volume free it once; gigabytes count sizes
// and extends.
func TestVolumeQuotaReservations(t *testing.T) {
	ctx := context.Background()
	qe := newQuotaEnv(t)
	pw := qe.Member(t, "vera", "quota-p", identity.RoleMember)
	project := qe.project(t, "quota-p")
	admin, vera := client(t, qe.Env, "admin", brokertest.AdminPassword, "admin"), client(t, qe.Env, "vera", pw, "quota-p")
	if _, err := quotasets.Update(ctx, admin, project, quotasets.UpdateOpts{Volumes: intp(3)}).Extract(); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var made []string
	var refusals []error
	for range 10 {
		wg.Go(func() {
			v, err := volumes.Create(ctx, vera, volumes.CreateOpts{Size: 1}, nil).Extract()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refusals = append(refusals, err)
				return
			}
			made = append(made, v.ID)
		})
	}
	wg.Wait()
	if len(made) != 3 || len(refusals) != 7 {
		t.Fatalf("%d made, %d refused (%v); want 3 and 7", len(made), len(refusals), refusals)
	}
	for _, err := range refusals {
		if !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) ||
			!strings.Contains(err.Error(), `"VolumeLimitExceeded: Maximum number of volumes allowed (3) exceeded for quota 'volumes'."`) {
			t.Fatalf("refusal = %v, want Cinder's 413 VolumeLimitExceeded", err)
		}
	}
	usage := func() quotasets.QuotaUsageSet {
		t.Helper()
		u, err := quotasets.GetUsage(ctx, vera, project).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := usage(); u.Volumes.InUse != 3 || u.Volumes.Reserved != 0 || u.Volumes.Limit != 3 || u.Gigabytes.InUse != 3 {
		t.Fatalf("usage = %+v", u)
	}

	t.Run("two deletes of one volume free it once", func(t *testing.T) {
		waitFor(t, func() bool {
			v, err := volumes.Get(ctx, vera, made[0]).Extract()
			return err == nil && v.Status == "available"
		})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() { errs[i] = volumes.Delete(ctx, vera, made[0], nil).ExtractErr() })
		}
		wg.Wait()
		// One deletes; the other finds it gone (404) or being deleted on
		// its peer (400, Cinder's invalid state), or deletes nothing more.
		if errs[0] != nil && errs[1] != nil {
			t.Fatalf("neither delete succeeded: %v", errs)
		}
		for _, err := range errs {
			if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) && !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
				t.Fatalf("delete = %v", err)
			}
		}
		if u := usage(); u.Volumes.InUse != 2 || u.Gigabytes.InUse != 2 {
			t.Fatalf("after the deletes: %+v, want 2 volumes of 2 GiB", u)
		}
	})

	t.Run("gigabytes", func(t *testing.T) {
		if _, err := quotasets.Update(ctx, admin, project, quotasets.UpdateOpts{Volumes: intp(10), Gigabytes: intp(5)}).Extract(); err != nil {
			t.Fatal(err)
		}
		_, err := volumes.Create(ctx, vera, volumes.CreateOpts{Size: 4}, nil).Extract()
		want := `"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 4G, quota is 5G and 2G has been consumed."`
		if !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) || !strings.Contains(err.Error(), want) {
			t.Fatalf("create over gigabytes = %v, want %s", err, want)
		}
		id := made[1]
		waitFor(t, func() bool {
			v, err := volumes.Get(ctx, vera, id).Extract()
			return err == nil && v.Status == "available"
		})
		if err := volumes.ExtendSize(ctx, vera, id, volumes.ExtendSizeOpts{NewSize: 5}).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) {
			t.Fatalf("extend 1 -> 5 GiB with 2 of 5 used = %v, want 413", err)
		}
		if err := volumes.ExtendSize(ctx, vera, id, volumes.ExtendSizeOpts{NewSize: 4}).ExtractErr(); err != nil {
			t.Fatalf("extend 1 -> 4 GiB with 2 of 5 used = %v", err)
		}
		if u := usage(); u.Gigabytes.InUse != 5 {
			t.Fatalf("after the extend: %+v, want 5 GiB", u)
		}
		waitFor(t, func() bool {
			v, err := volumes.Get(ctx, vera, id).Extract()
			return err == nil && v.Status == "available" && v.Size == 4
		})
		if err := volumes.Delete(ctx, vera, id, nil).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if u := usage(); u.Volumes.InUse != 1 || u.Gigabytes.InUse != 1 {
			t.Fatalf("after deleting the extended volume: %+v, want 1 volume of 1 GiB", u)
		}
	})

	t.Run("limits", func(t *testing.T) {
		l, err := limits.Get(ctx, vera).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if a := l.Absolute; a.MaxTotalVolumes != 10 || a.MaxTotalVolumeGigabytes != 5 || a.MaxTotalSnapshots != 10 || a.TotalVolumesUsed != 1 || a.TotalGigabytesUsed != 1 {
			t.Fatalf("absolute limits = %+v", a)
		}
	})
}

// TestCinderQuotaSets: os-quota-sets shows the project its own quota (a
// cloud admin any project's), and only cloud admins change it, each field
// checked.
func TestCinderQuotaSets(t *testing.T) {
	ctx := context.Background()
	qe := newQuotaEnv(t)
	pw := qe.Member(t, "vera", "quota-p", identity.RoleMember)
	project, other := qe.project(t, "quota-p"), qe.project(t, "admin")
	admin, vera := client(t, qe.Env, "admin", brokertest.AdminPassword, "admin"), client(t, qe.Env, "vera", pw, "quota-p")

	got, err := quotasets.Get(ctx, vera, project).Extract()
	if err != nil || got.Volumes != 10 || got.Gigabytes != 1000 || got.Snapshots != 10 || got.ID != project {
		t.Fatalf("own quota = %+v, %v; want Cinder's defaults", got, err)
	}
	if _, err := quotasets.Get(ctx, vera, other).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("another project's quota = %v, want 403", err)
	}
	if d, err := quotasets.GetDefaults(ctx, vera, project).Extract(); err != nil || d.Volumes != 10 {
		t.Fatalf("defaults = %+v, %v", d, err)
	}
	// Nova's limits of the project are not Cinder's to reset.
	if _, err := qe.ledger.Limits.(*quota.Limits).Set(ctx, project, quota.Amounts{quota.Instances: 4}); err != nil {
		t.Fatal(err)
	}
	v, err := volumes.Create(ctx, vera, volumes.CreateOpts{Size: 2}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}

	put := func(c *gophercloud.ServiceClient, body map[string]any) error {
		_, err := c.Put(ctx, c.ServiceURL("os-quota-sets", project), map[string]any{"quota_set": body}, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
		return err
	}
	tests := []struct {
		name   string
		client *gophercloud.ServiceClient
		body   map[string]any
		code   int
		want   string
	}{
		{"a member may not", vera, map[string]any{"volumes": 5}, http.StatusForbidden, "volume_extension:quotas:update"},
		{"below -1", admin, map[string]any{"volumes": -2}, http.StatusBadRequest, "quota_set.volumes"},
		{"not a number", admin, map[string]any{"gigabytes": "lots"}, http.StatusBadRequest, "quota_set.gigabytes"},
		{"too large", admin, map[string]any{"snapshots": 1 << 40}, http.StatusBadRequest, "quota_set.snapshots"},
		{"not offered", admin, map[string]any{"backups": 3}, http.StatusBadRequest, "quota_set.backups"},
		{"force not a boolean", admin, map[string]any{"volumes": 3, "force": "maybe"}, http.StatusBadRequest, "quota_set.force"},
		{"below usage", admin, map[string]any{"gigabytes": 1}, http.StatusBadRequest, "existing resources (2 used and reserved)"},
		{"below usage, forced", admin, map[string]any{"gigabytes": 1, "force": true}, http.StatusOK, ""},
		{"a string of a number", admin, map[string]any{"volumes": "7", "snapshots": -1}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := put(tt.client, tt.body)
			if tt.code == http.StatusOK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !gophercloud.ResponseCodeIs(err, tt.code) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("PUT %v = %v, want %d naming %q", tt.body, err, tt.code, tt.want)
			}
		})
	}
	got, err = quotasets.Get(ctx, admin, project).Extract()
	if err != nil || got.Volumes != 7 || got.Gigabytes != 1 || got.Snapshots != -1 {
		t.Fatalf("after the PUTs = %+v, %v", got, err)
	}
	if err := quotasets.Delete(ctx, vera, project).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a member's DELETE = %v, want 403", err)
	}
	if err := quotasets.Delete(ctx, admin, project).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got, err = quotasets.Get(ctx, admin, project).Extract()
	if err != nil || got.Volumes != 10 || got.Gigabytes != 1000 || got.Snapshots != 10 {
		t.Fatalf("after DELETE = %+v, %v; want the defaults", got, err)
	}
	if l, _ := qe.ledger.Quota(ctx, project); l[quota.Instances] != 4 {
		t.Fatalf("Cinder's DELETE reset the Nova limit: instances %d", l[quota.Instances])
	}
	if err := volumes.Delete(ctx, vera, v.ID, nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}
