package consultest_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cloudmux/cloudmux/internal/consultest"
)

// TestClusterSurvivesItsLeader: a write through a client agent works, the
// leader is killed, the servers elect another, and writes through the same
// client agent work again with the data intact.
func TestClusterSurvivesItsLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six Consul agents")
	}
	c := consultest.StartCluster(t, 3, 1)
	kv := c.Clients[0].Client().KV()
	if _, err := kv.Put(&api.KVPair{Key: "k", Value: []byte("before")}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	var next *consultest.Agent
	for next == nil || next == leader {
		if ctx.Err() != nil {
			t.Fatal("no new leader within a minute")
		}
		next, _ = c.Leader(ctx)
		time.Sleep(100 * time.Millisecond)
	}
	for {
		if _, err := kv.Put(&api.KVPair{Key: "k2", Value: []byte("after")}, nil); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("writes after the election: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pair, _, err := kv.Get("k", nil)
	if err != nil || pair == nil || string(pair.Value) != "before" {
		t.Fatalf("the value written before the election: %v %v", pair, err)
	}
}
