package volume_test

import (
	"context"
	"maps"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestVolumeUpdate: name, description and metadata change through PUT and
// the metadata paths (the broker keeps them: peers cannot), show in get
// and list, refuse reserved keys, and stay the project's.
func TestVolumeUpdate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, Name: "before", Metadata: map[string]string{"app": "db", "tier": "1"}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	name, desc := "after", "the database's disk"
	got, err := volumes.Update(ctx, admin, v.ID, volumes.UpdateOpts{Name: &name, Description: &desc}).Extract()
	if err != nil || got.Name != name || got.Description != desc || !maps.Equal(got.Metadata, map[string]string{"app": "db", "tier": "1"}) {
		t.Fatalf("rename = %+v, %v", got, err)
	}
	metaURL := admin.ServiceURL("volumes", v.ID, "metadata")
	tests := []struct {
		name   string
		method string
		body   map[string]any
		code   int
		want   map[string]string
	}{
		{"POST merges", http.MethodPost, map[string]any{"metadata": map[string]string{"owner": "ops"}}, http.StatusOK, map[string]string{"app": "db", "tier": "1", "owner": "ops"}},
		{"PUT replaces", http.MethodPut, map[string]any{"metadata": map[string]string{"app": "web"}}, http.StatusOK, map[string]string{"app": "web"}},
		{"reserved key", http.MethodPost, map[string]any{"metadata": map[string]string{"cloudmux_id": "x"}}, http.StatusBadRequest, map[string]string{"app": "web"}},
		{"no metadata", http.MethodPost, map[string]any{"meta": map[string]string{}}, http.StatusBadRequest, map[string]string{"app": "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.Request(ctx, tt.method, metaURL, &gophercloud.RequestOpts{JSONBody: tt.body, OkCodes: []int{http.StatusOK}})
			if tt.code == http.StatusOK && err != nil || tt.code != http.StatusOK && !gophercloud.ResponseCodeIs(err, tt.code) {
				t.Fatalf("%s = %v, want %d", tt.method, err, tt.code)
			}
			got, err := volumes.Get(ctx, admin, v.ID).Extract()
			if err != nil || !maps.Equal(got.Metadata, tt.want) {
				t.Fatalf("metadata = %v (%v), want %v", got.Metadata, err, tt.want)
			}
		})
	}
	if _, err := admin.Delete(ctx, admin.ServiceURL("volumes", v.ID, "metadata", "app"), &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Delete(ctx, admin.ServiceURL("volumes", v.ID, "metadata", "app"), &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}}); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("deleting a key that is gone = %v, want 404", err)
	}
	pages, err := volumes.List(admin, volumes.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vs, _ := volumes.ExtractVolumes(pages); len(vs) != 1 || vs[0].Description != desc || len(vs[0].Metadata) != 0 {
		t.Fatalf("list by the new name = %+v", vs)
	}

	pw := e.Member(t, "eve", "other", identity.RoleMember)
	eve := client(t, e, "eve", pw, "other")
	evil := "mine"
	if _, err := volumes.Update(ctx, eve, v.ID, volumes.UpdateOpts{Name: &evil}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("another project's rename = %v, want 404", err)
	}
	if err := volumes.Delete(ctx, admin, v.ID, nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if kvs, _, err := e.Store.List(ctx, "volume/attrs/"); err != nil || len(kvs) != 0 {
		t.Fatalf("the volume's attrs outlive it: %d records, %v", len(kvs), err)
	}
}
