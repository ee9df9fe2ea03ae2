package policy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

const denyAll = `package cloudmux.placement

deny[p.id] contains "closed for maintenance" if some p in input.peers
`

const denyAllTest = `package cloudmux.placement_test

import data.cloudmux.placement

test_everything_denied if {
	placement.deny["p-cheap"] with input as {"request": data.cloudmux.fixtures.request, "peers": [data.cloudmux.fixtures.peers.cheap]}
}
`

func TestUploadRefusesBrokenPolicies(t *testing.T) {
	ctx := context.Background()
	vs := policy.NewVersions(registry.NewMemory())
	good, created, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"deny.rego": denyAll}, Tests: map[string]string{"deny_test.rego": denyAllTest}}, "admin", "first")
	if err != nil || !created {
		t.Fatalf("upload: %v (created %v)", err, created)
	}
	if _, err := vs.Activate(ctx, good.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		bundle policy.Bundle
		kind   error
		want   []string // every position, file:row:col prefix
	}{
		{"parse errors in two files", policy.Bundle{Modules: map[string]string{
			"a.rego": "package cloudmux.placement\n\ndeny[p.id] contains \"x\" if {\n\tsome p in input.peers\n\tp.status ==\n}\n",
			"b.rego": "package cloudmux.placement\nscore := {\n",
		}}, policy.ErrCompile, []string{"a.rego:6:1: unexpected } token", "b.rego:3:0: unexpected eof token"}},
		{"compile error: unsafe variable", policy.Bundle{Modules: map[string]string{
			"a.rego": "package cloudmux.placement\n\ndeny[x] contains \"y\" if {\n\tz == 1\n}\n",
		}}, policy.ErrCompile, []string{"a.rego:3:6: var x is unsafe"}},
		{"no deny or score", policy.Bundle{Modules: map[string]string{"a.rego": "package other\nx := 1\n"}}, policy.ErrCompile, []string{"no module defines"}},
		{"a test that does not compile", policy.Bundle{Modules: map[string]string{"deny.rego": denyAll},
			Tests: map[string]string{"t_test.rego": "package t\ntest_x if { undefined_fn(1) }\n"}}, policy.ErrCompile, []string{"t_test.rego:2:"}},
		{"a failing test", policy.Bundle{Modules: map[string]string{"deny.rego": denyAll},
			Tests: map[string]string{"t_test.rego": "package t\n\ntest_fails if {\n\tfalse\n}\n"}}, policy.ErrTestsFailed, []string{"t_test.rego:3:1: t.test_fails fails"}},
		{"not a rego file name", policy.Bundle{Modules: map[string]string{"a.txt": denyAll}}, policy.ErrInvalid, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := vs.Upload(ctx, tc.bundle, "admin", "")
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			var got []string
			for _, p := range policy.Positions(err) {
				got = append(got, p.String())
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, w) || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("positions %q lack %q", got, w)
				}
			}
			a, err := vs.Active(ctx)
			if err != nil || a.Version != good.ID {
				t.Fatalf("active = %+v (%v), want %s untouched", a, err, good.ID)
			}
		})
	}
	list, err := vs.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != good.ID || !list[0].Active || list[1].ID != policy.StockVersion {
		t.Fatalf("list = %+v, %v; want the good version (active) and stock", list, err)
	}
}

func TestActivateRollback(t *testing.T) {
	ctx := context.Background()
	vs := policy.NewVersions(registry.NewMemory())
	upload := func(comment string) string {
		v, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"deny.rego": denyAll + "# " + comment + "\n"}}, "admin", comment)
		if err != nil {
			t.Fatal(err)
		}
		return v.ID
	}
	v1, v2 := upload("one"), upload("two")
	if again, created, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"deny.rego": denyAll + "# one\n"}}, "x", ""); err != nil || created || again.ID != v1 {
		t.Fatalf("re-upload = %s created %v %v; want the existing %s", again.ID, created, err, v1)
	}
	steps := []struct {
		name string
		do   func() (policy.Active, error)
		want string
		err  error
	}{
		{"nothing active is stock", func() (policy.Active, error) { return vs.Active(ctx) }, policy.StockVersion, nil},
		{"nothing to roll back to", func() (policy.Active, error) { return vs.Rollback(ctx, "admin") }, "", policy.ErrNoRollback},
		{"activate v1", func() (policy.Active, error) { return vs.Activate(ctx, v1, "admin") }, v1, nil},
		{"activate v2", func() (policy.Active, error) { return vs.Activate(ctx, v2, "admin") }, v2, nil},
		{"activate an unknown version", func() (policy.Active, error) { return vs.Activate(ctx, "0123456789abcdef", "admin") }, "", policy.ErrNotFound},
		{"roll back to v1", func() (policy.Active, error) { return vs.Rollback(ctx, "admin") }, v1, nil},
		{"roll back to stock", func() (policy.Active, error) { return vs.Rollback(ctx, "admin") }, policy.StockVersion, nil},
		{"activate stock by name", func() (policy.Active, error) { return vs.Activate(ctx, policy.StockVersion, "admin") }, policy.StockVersion, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			a, err := s.do()
			if !errors.Is(err, s.err) || (s.err == nil && a.Version != s.want) {
				t.Fatalf("= %+v, %v; want %s, %v", a, err, s.want, s.err)
			}
		})
	}
}

// followLatency activates a version through one Versions and measures how
// long a second engine following the same store (another broker replica)
// takes to decide with it.
func followLatency(t *testing.T, writer, reader policy.Store) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	vs := policy.NewVersions(writer)
	v, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"deny.rego": denyAll + fmt.Sprintf("# %d\n", time.Now().UnixNano())}}, "admin", "")
	if err != nil {
		t.Fatal(err)
	}
	follower := newEngine(t, policy.EngineConfig{Versions: policy.NewVersions(reader)})
	done := make(chan error, 1)
	go func() { done <- follower.Run(ctx) }()
	if follower.Active() != policy.StockVersion {
		t.Fatal("a new engine starts on stock")
	}
	changed := follower.Changed() // before acting, so the switch is not missed
	start := time.Now()
	if _, err := vs.Activate(ctx, v.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	for follower.Active() != v.ID {
		select {
		case <-changed:
			changed = follower.Changed()
		case <-ctx.Done():
			t.Fatalf("the follower never switched to %s", v.ID)
		}
	}
	took := time.Since(start)
	d, err := follower.Place(ctx, policy.Request{Kind: "server"}, []registry.Peer{privateRoomy})
	if err != nil || d.Policy != v.ID || len(d.Allowed()) != 0 {
		t.Fatalf("follower decided %+v with %s (%v), want everything denied by %s", d.Verdicts, d.Policy, err, v.ID)
	}
	cancel()
	<-done
	return took
}

func TestHotReloadMemory(t *testing.T) {
	s := registry.NewMemory()
	t.Logf("memory store: activation reached the second engine in %s", followLatency(t, s, s))
}
