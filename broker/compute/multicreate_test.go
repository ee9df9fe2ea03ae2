package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
)

// TestMultiCreate: min_count/max_count boot as many servers as the
// project's quota lets (at least min), named NAME-1.., under one
// reservation ID (a list filter, and return_reservation_id's answer);
// the whole batch is reserved at once, and what one request cannot give
// several servers is refused.
func TestMultiCreate(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	pw := se.Member(t, "milo", "mu", identity.RoleMember)
	c := se.compute(t, "milo", pw, "mu")
	p, err := se.Dir.FindProject(ctx, identity.DefaultDomainID, "mu")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := se.Ledger.Limits.(*quota.Limits).Set(ctx, p.ID, quota.Amounts{quota.Instances: 4}); err != nil {
		t.Fatal(err)
	}
	img := se.Seeded["local-a"].ImageID
	body := func(extra map[string]any) map[string]any {
		s := map[string]any{"name": "batch", "flavorRef": "1", "imageRef": img, "networks": "none"}
		for k, v := range extra {
			s[k] = v
		}
		return map[string]any{"server": s}
	}
	tests := []struct {
		name, version string
		extra         map[string]any
		code          int
		msg           string
	}{
		{"min above max", "2.1", map[string]any{"min_count": 3, "max_count": 2}, 400, "min_count must be <= max_count"},
		{"a port for many", "2.1", map[string]any{"max_count": 2, "networks": []map[string]any{{"port": "6e7a0000-0000-4000-8000-0000000000b0"}}}, 400, "single configured port"},
		{"a hostname for many", "2.90", map[string]any{"max_count": 2, "hostname": "h1"}, 400, "hostname to multiple instances"},
		{"more than the quota lets", "2.1", map[string]any{"min_count": 5}, 403, "Quota exceeded for instances"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, msg := call(t, at(c, tc.version), http.MethodPost, "servers", body(tc.extra))
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("= %d %q, want %d %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	// Up to 10 asked, at least 2: the quota lets 4.
	code, resp, msg := call(t, at(c, "2.1"), http.MethodPost, "servers", body(map[string]any{"min_count": 2, "max_count": "10", "return_reservation_id": true}))
	if code != 202 {
		t.Fatalf("multi-create = %d %s", code, msg)
	}
	rid, _ := resp["reservation_id"].(string)
	_, list, _ := call(t, at(c, "2.1"), http.MethodGet, "servers/detail?reservation_id="+rid, nil)
	var names []string
	for _, s := range list["servers"].([]any) {
		s := s.(map[string]any)
		names = append(names, s["name"].(string))
		waitStatus(t, c, s["id"].(string), "ACTIVE")
	}
	slices.Sort(names)
	if want := []string{"batch-1", "batch-2", "batch-3", "batch-4"}; !slices.Equal(names, want) {
		t.Fatalf("servers of %s = %v, want %v", rid, names, want)
	}
	used, reserved, err := se.Ledger.Usage(ctx, quota.Scope{Project: p.ID})
	if err != nil || used[quota.Instances] != 4 || reserved[quota.Instances] != 0 {
		t.Fatalf("usage = %v, reserved %v, %v; want the 4 servers counted and nothing left reserved", used, reserved, err)
	}
	code, _, msg = call(t, at(c, "2.1"), http.MethodPost, "servers", body(map[string]any{"max_count": 2}))
	if code != 403 || !strings.Contains(msg, "Quota exceeded") {
		t.Fatalf("a batch past the quota = %d %s, want 403", code, msg)
	}
	for i := range 4 {
		_, l, _ := call(t, at(c, "2.1"), http.MethodGet, fmt.Sprintf("servers?name=^batch-%d$", i+1), nil)
		id := l["servers"].([]any)[0].(map[string]any)["id"].(string)
		if code, _, msg := call(t, c, http.MethodDelete, "servers/"+id, nil); code != 204 {
			t.Fatalf("delete = %d %s", code, msg)
		}
	}
}
