package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestFailedRenameKeepsTheName: when the record's write loses (a concurrent
// update), the name index goes back to the name the record still has.
func TestFailedRenameKeepsTheName(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	dir := identity.NewDirectory(store, cheapHashes)
	if _, err := dir.Bootstrap(ctx, "admin-password", true); err != nil {
		t.Fatal(err)
	}
	u, err := dir.CreateUser(ctx, identity.User{Name: "olga", DomainID: identity.DefaultDomainID, Enabled: true}, "olga-password")
	if err != nil {
		t.Fatal(err)
	}
	store.InjectFault(func(op registry.Op, key string) error {
		if op == registry.OpCAS && strings.HasSuffix(key, "/"+u.ID) {
			return registry.ErrConflict
		}
		return nil
	})
	if _, err := dir.UpdateUser(ctx, u.ID, func(x *identity.User) { x.Name = "olga2" }); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("update with a lost CAS = %v, want ErrConflict", err)
	}
	store.InjectFault(nil)
	if got, err := dir.FindUser(ctx, identity.DefaultDomainID, "olga"); err != nil || got.ID != u.ID {
		t.Fatalf("the old name no longer finds the user: %+v, %v", got, err)
	}
	if _, err := dir.FindUser(ctx, identity.DefaultDomainID, "olga2"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the new name resolves though the rename failed: %v", err)
	}
}
