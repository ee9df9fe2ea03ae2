package compute_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
)

// cutStore fails deletes of the keys under prefix while cut is set.
type cutStore struct {
	index.Store
	prefix string
	cut    atomic.Bool
}

func (s *cutStore) Delete(ctx context.Context, key string) error {
	if s.cut.Load() && strings.HasPrefix(key, s.prefix) {
		return errors.New("store unreachable")
	}
	return s.Store.Delete(ctx, key)
}

// TestServerDeleteCutFreesOnce: a delete that removed the server's index
// entry but not the project's copy of it fails (and is retried), yet the
// server's quota is freed by the call that removed the entry, and not
// again by the retry.
func TestServerDeleteCutFreesOnce(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	store := &cutStore{Store: se.Store, prefix: "index-by-project/server/"}
	se.Servers.Index = index.New(store) // before any request: the HTTP API uses it too
	c := se.admin(t)
	project := quota.Scope{Project: se.Boot.Project.ID}
	var ids []string
	for _, name := range []string{"kept", "cut"} {
		s := create(t, c, servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID, Networks: "none"})
		waitStatus(t, c, s.ID, "ACTIVE")
		ids = append(ids, s.ID)
	}
	used := func() int {
		u, _, err := se.Ledger.Usage(ctx, project)
		if err != nil {
			t.Fatal(err)
		}
		return u[quota.Instances]
	}
	if n := used(); n != 2 {
		t.Fatalf("instances used = %d; want 2", n)
	}
	store.cut.Store(true)
	if err := servers.Delete(ctx, c, ids[1]).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusInternalServerError) {
		t.Fatalf("cut delete: %v; want a 500", err)
	}
	if n := used(); n != 1 {
		t.Fatalf("instances used after the cut delete = %d; want 1 (freed by the call that removed the entry)", n)
	}
	store.cut.Store(false)
	if err := servers.Delete(ctx, c, ids[1]).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("retried delete: %v", err)
	}
	if n := used(); n != 1 {
		t.Fatalf("instances used after the retry = %d; want still 1", n)
	}
}
