package identity_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestDeletedUserTakesCredentialsAlong: deleting a user deletes their
// application and EC2 credentials too, as Keystone does, so nothing of
// theirs is left in the store.
func TestDeletedUserTakesCredentialsAlong(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	e := newAppEnv(t, store)
	create(t, e.malC, e.mallory.ID, applicationcredentials.CreateOpts{Name: "ci"})
	ec2 := identity.NewEC2Credentials(e.dir)
	if _, err := ec2.Create(ctx, e.mallory.ID, e.proj.ID); err != nil {
		t.Fatal(err)
	}
	if code, body := e.call(t, http.MethodDelete, "/v3/users/"+e.mallory.ID, e.adminC.Token(), nil); code != http.StatusNoContent {
		t.Fatalf("delete user = %d %v", code, body)
	}
	apps, err := identity.NewAppCredentials(e.dir).List(ctx, e.mallory.ID)
	if err != nil || len(apps) != 0 {
		t.Fatalf("application credentials left: %v, %v", apps, err)
	}
	keys, err := ec2.List(ctx, e.mallory.ID)
	if err != nil || len(keys) != 0 {
		t.Fatalf("EC2 credentials left: %v, %v", keys, err)
	}
	// Alice's are untouched.
	create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "still-mine"})
}
