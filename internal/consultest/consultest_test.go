package consultest_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cloudmux/cloudmux/internal/consultest"
)

func TestStart(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()

	host, _, err := net.SplitHostPort(a.Addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr = %q, want a 127.0.0.1 host:port (%v)", a.Addr, err)
	}
	kv := a.Client().KV()
	if _, err := kv.Put(&api.KVPair{Key: "consultest/hello", Value: []byte("world")}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		t.Fatalf("KV put: %v", err)
	}
	pair, _, err := kv.Get("consultest/hello", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || pair == nil || string(pair.Value) != "world" {
		t.Fatalf("KV get = %+v, %v", pair, err)
	}
	// Sessions need the node's serfHealth check, which Start waits for.
	id, _, err := a.Client().Session().Create(&api.SessionEntry{TTL: "10s"}, (&api.WriteOptions{}).WithContext(ctx))
	if err != nil || id == "" {
		t.Fatalf("session create right after Start = %q, %v", id, err)
	}
}

func TestStopIsIdempotentAndClosesThePort(t *testing.T) {
	t.Parallel()
	a, stop, err := consultest.StartProcess()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := a.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", a.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("HTTP port %s still accepts connections after Stop", a.Addr)
	}
	if a.LogTail(5) == "" {
		t.Fatal("LogTail is empty: agent output was not captured")
	}
}

func TestTwoAgentsRunSideBySide(t *testing.T) {
	t.Parallel()
	a, b := consultest.Start(t), consultest.Start(t)
	if a.Addr == b.Addr || a.NodeName == b.NodeName {
		t.Fatalf("agents share an address or node name: %s/%s vs %s/%s", a.Addr, a.NodeName, b.Addr, b.NodeName)
	}
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	if _, err := a.Client().KV().Put(&api.KVPair{Key: "only-in-a", Value: []byte("x")}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	pair, _, err := b.Client().KV().Get("only-in-a", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || pair != nil {
		t.Fatalf("agent b sees agent a's key: %+v, %v", pair, err)
	}
}
