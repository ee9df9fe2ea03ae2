package volume_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
)

// newTypesEnv serves Keystone and Cinder over two roomy peers, one
// labelled tier=gold, with the volume types in memory.
func newTypesEnv(t *testing.T) *brokertest.Env {
	t.Helper()
	return brokertest.New(t, []brokertest.Peer{{Name: "gold", DiskGiB: 500, Labels: map[string]string{"tier": "gold"}}, {Name: "plain", DiskGiB: 500}},
		func(e *brokertest.Env, r chi.Router) {
			types := volume.NewTypesMemory(e.Store, e.Log)
			e.Start(t, types)
			svc := &volume.Service{Pool: e.Pool, Index: index.New(e.Store), Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "test-broker",
				Types: types, Quota: quota.NewLedger(e.Store, "test-broker", e.Log)}
			cinder := &volume.Cinder{Volumes: svc, Auth: e.Keystone.Authenticate, Log: e.Log}
			r.Route("/volume", cinder.Routes)
		})
}

// TestVolumeTypes: a type restricted to a label puts every volume on the
// peers carrying it (the plain peer has more room left, and is never
// taken); the peer's own type comes from the type's spec; specs the
// broker does not act on are refused; a private type is another
// project's 404 until it is given access; only admins change types.
func TestVolumeTypes(t *testing.T) {
	ctx := context.Background()
	e := newTypesEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	priv := false
	gold, err := volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: "gold", IsPublic: &priv,
		ExtraSpecs: map[string]string{volume.SpecLabelPrefix + "tier": "gold", volume.SpecPeerType: "local"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, VolumeType: "gold"}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if v.AvailabilityZone != "gold" || v.VolumeType != "gold" {
			t.Fatalf("a gold volume = zone %s, type %q; want on the gold peer, of type gold", v.AvailabilityZone, v.VolumeType)
		}
	}
	if _, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, VolumeType: "gold", AvailabilityZone: "plain"}, nil).Extract(); err == nil {
		t.Fatal("a gold volume was made on the plain peer")
	}
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1}, nil).Extract()
	if err != nil || v.VolumeType != volume.DefaultTypeName {
		t.Fatalf("a volume without a type = %+v, %v; want of type %s", v, err, volume.DefaultTypeName)
	}
	bad, err := volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: "nowhere", ExtraSpecs: map[string]string{volume.SpecPeerType: "no-such-type"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, VolumeType: bad.ID}, nil).Extract(); err == nil {
		t.Fatal("a volume of a type its peer lacks was made")
	}

	refusals := []struct {
		name string
		err  func() error
		code int
	}{
		{"a spec the broker does not act on", func() error {
			return volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: "x", ExtraSpecs: map[string]string{"volume_backend_name": "lvm"}}).Err
		}, http.StatusBadRequest},
		{"a taken name", func() error { return volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: "gold"}).Err }, http.StatusConflict},
		{"deleting the default", func() error { return volumetypes.Delete(ctx, admin, volume.DefaultTypeID).ExtractErr() }, http.StatusBadRequest},
		{"an unknown type", func() error {
			return volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, VolumeType: "silver"}, nil).Err
		}, http.StatusNotFound},
		{"access to a public type", func() error {
			return volumetypes.AddAccess(ctx, admin, bad.ID, volumetypes.AddAccessOpts{Project: "p"}).ExtractErr()
		}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err(); !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("= %v, want %d", err, tc.code)
			}
		})
	}

	pw := e.Member(t, "eve", "other", identity.RoleMember)
	eve := client(t, e, "eve", pw, "other")
	if _, err := volumes.Create(ctx, eve, volumes.CreateOpts{Size: 1, VolumeType: "gold"}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("another project using a private type = %v, want 404", err)
	}
	if err := volumetypes.Delete(ctx, eve, gold.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a member deleting a type = %v, want 403", err)
	}
	p, err := e.Dir.FindProject(ctx, identity.DefaultDomainID, "other")
	if err != nil {
		t.Fatal(err)
	}
	if err := volumetypes.AddAccess(ctx, admin, gold.ID, volumetypes.AddAccessOpts{Project: p.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got, err := volumes.Create(ctx, eve, volumes.CreateOpts{Size: 1, VolumeType: "gold"}, nil).Extract()
	if err != nil || got.AvailabilityZone != "gold" {
		t.Fatalf("with access = %+v, %v; want on the gold peer", got, err)
	}
	pages, err := volumetypes.List(eve, volumetypes.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]map[string]string{}
	ts, _ := volumetypes.ExtractVolumeTypes(pages)
	for _, vt := range ts {
		names[vt.Name] = vt.ExtraSpecs
	}
	if _, ok := names["gold"]; !ok || len(names["gold"]) != 0 {
		t.Fatalf("eve lists %v; want gold, its extra specs hidden", names)
	}
}

// TestRetype: os-retype gives a volume a type its peer already
// satisfies; one that would move it (a label its peer lacks, another
// peer type) is refused as needing migration, an unknown or another
// project's private type is not found, and another project cannot
// retype the volume.
func TestRetype(t *testing.T) {
	ctx := context.Background()
	e := newTypesEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	mk := func(name string, specs map[string]string) {
		t.Helper()
		if _, err := volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: name, ExtraSpecs: specs}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	mk("gold", map[string]string{volume.SpecLabelPrefix + "tier": "gold"})
	mk("gold-local", map[string]string{volume.SpecLabelPrefix + "tier": "gold", volume.SpecPeerType: "__DEFAULT__"})
	mk("silver", map[string]string{volume.SpecLabelPrefix + "tier": "silver"})
	mk("other-backend", map[string]string{volume.SpecPeerType: "local"})
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, VolumeType: "gold"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolumeStatus(t, admin, v.ID, "available")
	tests := []struct {
		name, newType string
		code          int
		want          string
	}{
		{"same peer, same backend", "gold-local", http.StatusAccepted, "gold-local"},
		{"back", "gold", http.StatusAccepted, "gold"},
		{"a label its peer lacks", "silver", http.StatusBadRequest, "gold"},
		{"another backend", "other-backend", http.StatusBadRequest, "gold"},
		{"unknown", "bronze", http.StatusNotFound, "gold"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.Post(ctx, admin.ServiceURL("volumes", v.ID, "action"), map[string]any{"os-retype": map[string]string{"new_type": tc.newType, "migration_policy": "never"}},
				nil, &gophercloud.RequestOpts{OkCodes: []int{http.StatusAccepted}})
			if tc.code == http.StatusAccepted && err != nil || tc.code != http.StatusAccepted && !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("retype to %s = %v, want %d", tc.newType, err, tc.code)
			}
			got, err := volumes.Get(ctx, admin, v.ID).Extract()
			if err != nil || got.VolumeType != tc.want {
				t.Fatalf("type = %q, %v; want %q", got.VolumeType, err, tc.want)
			}
		})
	}
	pw := e.Member(t, "eve", "other", identity.RoleMember)
	eve := client(t, e, "eve", pw, "other")
	if _, err := eve.Post(ctx, eve.ServiceURL("volumes", v.ID, "action"), map[string]any{"os-retype": map[string]string{"new_type": "gold-local"}},
		nil, &gophercloud.RequestOpts{OkCodes: []int{http.StatusAccepted}}); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("another project's retype = %v, want 404", err)
	}
}
