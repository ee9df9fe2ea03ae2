package quota_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// holderEnv makes this test binary, re-run as a child, the broker that
// holds a reservation until it is killed.
const holderEnv = "CLOUDMUX_QUOTA_HOLDER_CONSUL"

// TestReservationOfAKilledProcessExpires: a process holding a
// reservation on a real Consul (and renewing it, every TTL/3) is killed
// with SIGKILL; its reservation holds the project's last volume until it
// expires, then another broker's reserve passes.
func TestReservationOfAKilledProcessExpires(t *testing.T) {
	if addr := os.Getenv(holderEnv); addr != "" {
		holdUntilKilled(addr)
		return
	}
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	ctx := context.Background()
	agent := consultest.Start(t)
	store, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "killed/"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	live := newLedger(store, "live", nil)
	if _, err := live.Limits.(*quota.Limits).Set(ctx, "p1", quota.Amounts{quota.Volumes: 1}); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^TestReservationOfAKilledProcessExpires$")
	child.Env = append(os.Environ(), holderEnv+"="+agent.Addr)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "reserved") {
		_ = child.Process.Kill()
		t.Fatalf("holder said %q, %v", line, err)
	}
	// Alive, the holder keeps its reservation past its TTL (renewing it
	// every TTL/3, so three renewals would have to fail for it to lapse).
	time.Sleep(holderTTL + holderTTL/2)
	if _, err := live.Reserve(ctx, quota.Scope{Project: "p1"}, quota.Amounts{quota.Volumes: 1}, "volume"); !errors.Is(err, quota.ErrOverQuota) {
		t.Fatalf("while the holder lives: %v, want over quota", err)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	var r *quota.Reservation
	waitUntil(t, "the killed holder's reservation to expire", func() bool {
		r, err = live.Reserve(ctx, quota.Scope{Project: "p1"}, quota.Amounts{quota.Volumes: 1}, "volume")
		return err == nil
	})
	if err := r.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	used, reserved, err := live.Usage(ctx, quota.Scope{Project: "p1"})
	if err != nil || used[quota.Volumes] != 1 || len(reserved) != 0 {
		t.Fatalf("used %v reserved %v, %v", used, reserved, err)
	}
}

// holderTTL is the child's reservation TTL: short, so the test is quick;
// the child renews every third of it.
const holderTTL = 6 * time.Second

func holdUntilKilled(addr string) {
	store, err := consul.New(consul.Config{Address: addr, KeyPrefix: "killed/"}, quiet())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	l := newLedger(store, "doomed", nil)
	l.TTL = holderTTL
	if _, err := l.Reserve(context.Background(), quota.Scope{Project: "p1"}, quota.Amounts{quota.Volumes: 1}, "volume"); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("reserved")
	select {} // until SIGKILL
}

// waitUntil polls cond until it holds or 30 s pass; the interval is not a
// correctness gate.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
