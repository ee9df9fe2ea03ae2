package volume_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestCreateRefusesWhatItDoesNotMake: a create naming a backup, a group
// or multiattach is refused (400 naming the field), never served as a
// blank volume.
func TestCreateRefusesWhatItDoesNotMake(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	tests := []struct {
		name  string
		field string
		value any
	}{
		{"backup", "backup_id", "0b6f8b7e-5a7e-4f63-9d8c-7f1f0f3a2b10"},
		{"consistency group", "consistencygroup_id", "6c0e3a51-22d4-4b9c-8f44-3c4b0e1c9d21"},
		{"group", "group_id", "1d3f2a77-8e6b-4c0a-b5d9-2e7f6a4c8b30"},
		{"multiattach", "multiattach", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"volume": map[string]any{"size": 1, "name": "x", tt.field: tt.value}}
			var fault map[string]map[string]any
			_, err := admin.Post(ctx, admin.ServiceURL("volumes"), body, &fault, &gophercloud.RequestOpts{OkCodes: []int{http.StatusAccepted}})
			if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
				t.Fatalf("create with %s = %v, want 400", tt.field, err)
			}
			pages, err := volumes.List(admin, volumes.ListOpts{}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if vs, _ := volumes.ExtractVolumes(pages); len(vs) != 0 {
				t.Fatalf("a refused create left volumes: %+v", vs)
			}
		})
	}
}

// TestSetBootable: os-set_bootable sets the flag the volume shows (JSON
// booleans and Cinder's strings), refuses other values, and another
// project's volume is not found.
func TestSetBootable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, Name: "boot"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	act := admin.ServiceURL("volumes", v.ID, "action")
	tests := []struct {
		name  string
		value any
		code  int
		want  string
	}{
		{"true", true, http.StatusOK, "true"},
		{"string false", "false", http.StatusOK, "false"},
		{"string yes", "yes", http.StatusOK, "true"},
		{"not a boolean", "maybe", http.StatusBadRequest, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.Post(ctx, act, map[string]any{"os-set_bootable": map[string]any{"bootable": tt.value}}, nil, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}})
			if tt.code == http.StatusOK && err != nil || tt.code != http.StatusOK && !gophercloud.ResponseCodeIs(err, tt.code) {
				t.Fatalf("os-set_bootable %v = %v, want %d", tt.value, err, tt.code)
			}
			got, err := volumes.Get(ctx, admin, v.ID).Extract()
			if err != nil || got.Bootable != tt.want {
				t.Fatalf("bootable = %q (%v), want %q", got.Bootable, err, tt.want)
			}
		})
	}
	if _, err := admin.Post(ctx, act, map[string]any{"os-frobnicate": map[string]any{}}, nil, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}}); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("an unknown action = %v, want 400", err)
	}
	pw := e.Member(t, "eve", "other", identity.RoleMember)
	eve := client(t, e, "eve", pw, "other")
	if _, err := eve.Post(ctx, eve.ServiceURL("volumes", v.ID, "action"), map[string]any{"os-set_bootable": map[string]any{"bootable": false}}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}}); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("another project's os-set_bootable = %v, want 404", err)
	}
}
