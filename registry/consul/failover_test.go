package consul_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
)

// setSink is a Mirror sink a test reads.
type setSink struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (s *setSink) Set(key string, _ string) { s.mu.Lock(); s.keys[key] = true; s.mu.Unlock() }
func (s *setSink) Unset(key string)         { s.mu.Lock(); delete(s.keys, key); s.mu.Unlock() }
func (s *setSink) has(key string) bool      { s.mu.Lock(); defer s.mu.Unlock(); return s.keys[key] }

// TestMirrorFollowsLeaderFailover: a Mirror reading through one client
// agent keeps following writes made through another after the Consul
// leader is SIGKILLed: its watch fails over to the new leader and misses
// nothing written before, during or after the election.
func TestMirrorFollowsLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-server Consul cluster")
	}
	cluster := consultest.StartCluster(t, 3, 2)
	reader := newStore(t, cluster.Clients[0], "failover/")
	writer := newStore(t, cluster.Clients[1], "failover/")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sink := &setSink{keys: map[string]bool{}}
	m := registry.NewMirror(reader, "items/", func(kv registry.KV) (string, error) { return string(kv.Value), nil }, registry.Sink[string](sink), nil)
	go func() { _ = m.Run(ctx) }()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	seen := func(key string, bound time.Duration) bool {
		deadline := time.Now().Add(bound)
		for time.Now().Before(deadline) {
			if sink.has(key) {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	write := func(i int) string {
		key := fmt.Sprintf("items/%03d", i)
		for {
			_, err := writer.Put(ctx, key, []byte("v"))
			if err == nil {
				return key
			}
			if ctx.Err() != nil {
				t.Fatalf("write %s: %v", key, err)
			}
			time.Sleep(100 * time.Millisecond) // no leader yet
		}
	}
	if k := write(0); !seen(k, 10*time.Second) {
		t.Fatalf("%s not mirrored before the failover", k)
	}
	leader, err := cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s", leader.NodeName)
	var keys []string
	for i := 1; i <= 40; i++ {
		keys = append(keys, write(i))
		time.Sleep(250 * time.Millisecond)
	}
	for _, k := range keys {
		if !seen(k, 20*time.Second) {
			t.Fatalf("%s (written after the leader's kill) never mirrored", k)
		}
	}
}
