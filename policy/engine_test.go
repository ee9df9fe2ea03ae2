package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

func newEngine(t testing.TB, cfg policy.EngineConfig) *policy.Engine {
	t.Helper()
	e, err := policy.NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func res(total, used int64) registry.Resource { return registry.Resource{Total: total, Used: used} }

// Peers of the rule tests: a private local cloud with room, a full one,
// two public clouds at different costs, a down one, a degraded one.
var (
	privateRoomy = registry.Peer{ID: "id-roomy", Name: "roomy", Kind: registry.KindLocal, Status: registry.StatusUp,
		Labels:   map[string]string{"tier": "private", "region": "home"},
		Capacity: registry.Capacity{VCPUs: res(16, 2), RAMMiB: res(32768, 4096), DiskGiB: res(500, 50), Instances: res(10, 1)}}
	privateFull = registry.Peer{ID: "id-full", Name: "full", Kind: registry.KindLocal, Status: registry.StatusUp,
		Capacity: registry.Capacity{VCPUs: res(16, 15), RAMMiB: res(32768, 32000), DiskGiB: res(500, 499), Instances: res(10, 10)}}
	publicCheap = registry.Peer{ID: "id-cheap", Name: "cheap", Kind: registry.KindOpenStack, Status: registry.StatusUp,
		Labels: map[string]string{"tier": "public", "gpu": "none", "arch": "x86_64"},
		Cost:   registry.Cost{VCPUHour: 0.02, RAMGiBHour: 0.005}}
	publicDear = registry.Peer{ID: "id-dear", Name: "dear", Kind: registry.KindOpenStack, Status: registry.StatusUp,
		Labels: map[string]string{"tier": "public", "gpu": "a100", "cost": "0.90", "arch": "aarch64"}}
	down     = registry.Peer{ID: "id-down", Name: "down", Kind: registry.KindOpenStack, Status: registry.StatusDown}
	degraded = registry.Peer{ID: "id-degraded", Name: "degraded", Kind: registry.KindOpenStack, Status: registry.StatusDegraded,
		Labels: map[string]string{"tier": "public", "cost": "0.01"}}
)

// TestStockRules covers the stock policy rule by rule: which peers are
// allowed (best first), and a reason each rejected peer must give.
func TestStockRules(t *testing.T) {
	all := []registry.Peer{privateRoomy, privateFull, publicCheap, publicDear, down, degraded}
	small := policy.Request{Kind: "server", Project: "p", VCPUs: 1, RAMMiB: 1024, DiskGiB: 10}
	with := func(f func(*policy.Request)) policy.Request { r := small; f(&r); return r }
	tests := []struct {
		name     string
		req      policy.Request
		pool     []registry.Peer
		allowed  string            // allowed peer names, best first
		rejected map[string]string // peer -> a reason it must give
	}{
		{"unhealthy peers are denied", small, all, "roomy,cheap,degraded,dear",
			map[string]string{"down": "status is down"}},
		{"a full private peer is denied on every exhausted dimension", small, all, "roomy,cheap,degraded,dear",
			map[string]string{"full": "needs 1024 MiB of RAM, 768 free"}},
		{"no instance slots", small, []registry.Peer{privateFull}, "", map[string]string{"full": "no instance slots free"}},
		{"private first, then public by cost", small, []registry.Peer{publicDear, publicCheap, privateRoomy}, "roomy,cheap,dear", nil},
		{"overflow to the cheapest public when private is full", small, []registry.Peer{publicDear, privateFull, publicCheap}, "cheap,dear",
			map[string]string{"full": "needs 1024 MiB of RAM, 768 free"}},
		{"a local peer without a tier label is private", small, []registry.Peer{publicCheap, {ID: "id-l", Name: "l", Kind: registry.KindLocal, Status: registry.StatusUp}}, "l,cheap", nil},
		{"degraded ranks below up at equal cost", small, []registry.Peer{degraded, {ID: "id-u", Name: "u", Kind: registry.KindOpenStack, Status: registry.StatusUp, Labels: map[string]string{"cost": "0.01"}}}, "u,degraded", nil},
		{"required labels", with(func(r *policy.Request) { r.RequiredLabels = map[string]string{"gpu": "a100"} }), all, "dear",
			map[string]string{"cheap": "lacks required label gpu=a100", "roomy": "lacks required label gpu=a100"}},
		{"preferred labels raise a score", with(func(r *policy.Request) { r.PreferredLabels = map[string]string{"gpu": "a100"} }),
			[]registry.Peer{publicCheap, {ID: "id-d2", Name: "d2", Kind: registry.KindOpenStack, Status: registry.StatusUp, Labels: map[string]string{"gpu": "a100"}, Cost: publicCheap.Cost}}, "d2,cheap", nil},
		{"availability zone pins a peer", with(func(r *policy.Request) { r.AvailabilityZone = "cheap" }), all, "cheap",
			map[string]string{"roomy": `not availability zone "cheap"`}},
		{"image min_ram bigger than the flavor denies every peer", with(func(r *policy.Request) { r.Image = &policy.Image{ID: "img", MinRAMMiB: 2048} }), all, "",
			map[string]string{"roomy": "image img needs 2048 MiB of RAM, the flavor has 1024", "cheap": "image img needs 2048 MiB"}},
		{"image min_disk bigger than the flavor", with(func(r *policy.Request) { r.Image = &policy.Image{ID: "img", MinDiskGiB: 20} }), all, "",
			map[string]string{"roomy": "image img needs 20 GiB of disk, the flavor has 10"}},
		{"image min_disk does not bind a boot-from-volume flavor", with(func(r *policy.Request) { r.DiskGiB = 0; r.Image = &policy.Image{ID: "img", MinDiskGiB: 20} }), []registry.Peer{privateRoomy}, "roomy", nil},
		{"image architecture against the peer's arch label", with(func(r *policy.Request) {
			r.Image = &policy.Image{ID: "img", Properties: map[string]string{"architecture": "x86_64"}}
		}), []registry.Peer{publicCheap, publicDear, privateRoomy}, "roomy,cheap", map[string]string{"dear": "image architecture x86_64, peer offers aarch64"}},
		{"a peer holding the image scores higher", with(func(r *policy.Request) { r.Image = &policy.Image{ID: "img", Peers: []string{"id-dear"}} }),
			[]registry.Peer{publicCheap, {ID: "id-dear", Name: "dear", Kind: registry.KindOpenStack, Status: registry.StatusUp, Cost: publicCheap.Cost}}, "dear,cheap", nil},
		{"project quota spans all peers", with(func(r *policy.Request) {
			r.Usage, r.Quota = &policy.Usage{VCPUs: 9, Instances: 3}, &policy.Usage{VCPUs: 10, RAMMiB: -1, DiskGiB: -1, Instances: 3, Volumes: -1}
		}), all, "", map[string]string{"roomy": "project quota for instances exceeded: 3 used + 1 requested > 3 allowed", "cheap": "project quota for instances"}},
		{"quota with room", with(func(r *policy.Request) {
			r.Usage, r.Quota = &policy.Usage{VCPUs: 8}, &policy.Usage{VCPUs: 10, RAMMiB: -1, DiskGiB: -1, Instances: -1, Volumes: -1}
		}), []registry.Peer{privateRoomy}, "roomy", nil},
		{"volumes need disk, not instance slots", policy.Request{Kind: "volume", DiskGiB: 100}, []registry.Peer{privateFull, privateRoomy}, "roomy",
			map[string]string{"full": "needs 100 GiB of disk, 1 free"}},
		{"images score room on disk", policy.Request{Kind: "image", DiskGiB: 10}, []registry.Peer{
			{ID: "id-a", Name: "a", Kind: registry.KindLocal, Status: registry.StatusUp, Capacity: registry.Capacity{RAMMiB: res(100, 0), DiskGiB: res(100, 90)}},
			{ID: "id-b", Name: "b", Kind: registry.KindLocal, Status: registry.StatusUp, Capacity: registry.Capacity{RAMMiB: res(100, 90), DiskGiB: res(100, 0)}},
		}, "b,a", nil},
		{"replicas spread: the peer without one wins", with(func(r *policy.Request) {
			r.Deployment = &policy.Deployment{ID: "d1", Resource: "web", Replica: 1}
			r.SpreadPeers = map[string]int{"id-roomy": 1}
		}), []registry.Peer{privateRoomy, {ID: "id-r2", Name: "roomy2", Kind: registry.KindLocal, Status: registry.StatusUp, Capacity: privateRoomy.Capacity}}, "roomy2,roomy", nil},
	}
	e := newEngine(t, policy.EngineConfig{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.Explain(context.Background(), "", tc.req, tc.pool)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range d.Allowed() {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != tc.allowed {
				t.Fatalf("allowed = %v, want %s\n%s", names, tc.allowed, dump(d))
			}
			for _, v := range d.Verdicts {
				if want, ok := tc.rejected[v.Peer.Name]; ok && (v.Allowed || !strings.Contains(strings.Join(v.Reasons, "; "), want)) {
					t.Errorf("%s (allowed %v) reasons %q lack %q", v.Peer.Name, v.Allowed, v.Reasons, want)
				}
				if v.Allowed && (v.Score < 0 || v.Score > 100) {
					t.Errorf("%s score %d outside 0-100", v.Peer.Name, v.Score)
				}
				if len(v.Reasons) == 0 {
					t.Errorf("%s has no reason", v.Peer.Name)
				}
			}
		})
	}
}

func dump(d policy.Decision) string {
	var b strings.Builder
	for _, v := range d.Verdicts {
		b.WriteString(v.Peer.Name + " " + map[bool]string{true: "allowed", false: "denied"}[v.Allowed] + " " + strings.Join(v.Reasons, "; ") + "\n")
	}
	return b.String()
}

// TestBursting: a private peer takes servers until its capacity runs out,
// then the cheapest public peer takes the overflow.
func TestBursting(t *testing.T) {
	e := newEngine(t, policy.EngineConfig{})
	private := registry.Peer{ID: "id-p", Name: "private", Kind: registry.KindLocal, Status: registry.StatusUp,
		Labels: map[string]string{"tier": "private"}, Capacity: registry.Capacity{VCPUs: res(8, 0), RAMMiB: res(8192, 0)}}
	cheap := registry.Peer{ID: "id-c", Name: "cheap", Kind: registry.KindOpenStack, Status: registry.StatusUp,
		Labels: map[string]string{"tier": "public"}, Cost: registry.Cost{VCPUHour: 0.02, RAMGiBHour: 0.01}}
	dear := registry.Peer{ID: "id-d", Name: "dear", Kind: registry.KindOpenStack, Status: registry.StatusUp,
		Labels: map[string]string{"tier": "public"}, Cost: registry.Cost{VCPUHour: 0.05, RAMGiBHour: 0.02}}
	req := policy.Request{Kind: "server", VCPUs: 2, RAMMiB: 2048}
	var placed []string
	for range 6 {
		d, err := e.Place(context.Background(), req, []registry.Peer{dear, cheap, private})
		if err != nil {
			t.Fatal(err)
		}
		best := d.Allowed()[0]
		placed = append(placed, best.Name)
		if best.ID == private.ID { // what the peer would report after the create
			private.Capacity.VCPUs.Used += 2
			private.Capacity.RAMMiB.Used += 2048
		}
	}
	if want := []string{"private", "private", "private", "private", "cheap", "cheap"}; !slices.Equal(placed, want) {
		t.Fatalf("placed on %v, want %v", placed, want)
	}
}

// TestFailClosed: a policy that errors or runs past the deadline places
// nothing and says why.
func TestFailClosed(t *testing.T) {
	store := registry.NewMemory()
	vs := policy.NewVersions(store)
	ctx := context.Background()
	tests := []struct {
		name, rego, want string
	}{
		{"conflicting outputs", "package cloudmux.placement\nscore[p.id] := 1 if some p in input.peers\nscore[p.id] := 2 if some p in input.peers\n", "policy: evaluation failed"},
		{"deadline", "package cloudmux.placement\ndeny[p.id] contains \"slow\" if {\n\tsome p in input.peers\n\tsome i in numbers.range(1, 100000000)\n\ti < 0\n}\n", "did not decide within"},
		{"wrong output shape", "package cloudmux.placement\nscore := 7\n", "score is"},
		{"per peer: deny not a set", "package cloudmux.placement\ndeny := {\"a\": 1} if input.peer.id\n", "deny for peer"},
		{"per peer: conflicting scores", "package cloudmux.placement\nscore := 1 if input.peer.id\nscore := 2 if input.peer.name\n", "policy: evaluation failed"},
		{"per peer: request_deny not a set", "package cloudmux.placement\nrequest_deny := 3\nscore := 1 if input.peer.id\n", "request_deny"},
		{"per peer: deadline", "package cloudmux.placement\ndeny contains \"slow\" if {\n\tinput.peer.id\n\tsome i in numbers.range(1, 100000000)\n\ti < 0\n}\n", "did not decide within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"p.rego": tc.rego}}, "t", "")
			if err != nil {
				t.Fatal(err)
			}
			e := newEngine(t, policy.EngineConfig{Versions: vs, Timeout: 50 * time.Millisecond})
			_, err = e.Explain(ctx, v.ID, policy.Request{Kind: "server"}, []registry.Peer{privateRoomy})
			if !errors.Is(err, policy.ErrEvaluation) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrEvaluation mentioning %q", err, tc.want)
			}
		})
	}
}

// TestDecisionLog: a real decision is logged once in OPA's decision log
// shape and recorded; explain neither logs nor records.
func TestDecisionLog(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(&logrus.JSONFormatter{})
	store := registry.NewMemory()
	ds := policy.NewDecisions(store, 0, 0)
	e := newEngine(t, policy.EngineConfig{Log: log, Decisions: ds, Labels: map[string]string{"id": "broker-1"}})
	ctx := context.Background()
	req := policy.Request{Kind: "server", Project: "p1", ResourceID: "srv-1", VCPUs: 1, Deployment: &policy.Deployment{ID: "dep-1", Resource: "web"}}
	if _, err := e.Explain(ctx, "", req, []registry.Peer{privateRoomy}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("explain logged: %s", buf.String())
	}
	d, err := e.Place(ctx, req, []registry.Peer{privateRoomy, down})
	if err != nil {
		t.Fatal(err)
	}
	var entry map[string]any
	if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
		t.Fatalf("decision log is not one JSON entry: %v\n%s", err, buf.String())
	}
	for _, k := range []string{"decision_id", "path", "input", "result", "timestamp", "metrics", "labels"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("decision log lacks %q: %v", k, entry)
		}
	}
	if entry["decision_id"] != d.ID || entry["path"] != policy.Path {
		t.Errorf("decision_id %v path %v, want %s %s", entry["decision_id"], entry["path"], d.ID, policy.Path)
	}
	for _, q := range []policy.Query{{Resource: "srv-1"}, {Deployment: "dep-1"}, {}} {
		recs, err := ds.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].ID != d.ID || len(recs[0].Verdicts) != 2 || recs[0].Order[0] != "roomy" {
			t.Fatalf("query %+v = %+v", q, recs)
		}
	}
}

// TestScoreForms: a score is a number, an object with a score, or an
// object with parts only (the engine adds them); anything else fails
// closed.
func TestScoreForms(t *testing.T) {
	vs := policy.NewVersions(registry.NewMemory())
	ctx := context.Background()
	tests := []struct {
		name, score string
		want        int
		reason      string // a reason it must give; "" = fails closed
	}{
		{"a number", `42`, 42, "score 42"},
		{"an object with a score and parts", `{"score": 40, "parts": {"a": 30, "b": 12}}`, 40, "score 40 = a 30 + b 12"},
		{"parts only: their sum", `{"parts": {"a": 30, "b": 12}}`, 42, "score 42 = a 30 + b 12"},
		{"parts only, clamped", `{"parts": {"a": 90, "b": 30}}`, 100, "score 100 = a 90 + b 30"},
		{"a part that is not a number", `{"parts": {"a": 30, "b": "x"}}`, 0, ""},
		{"neither score nor parts", `{"reasons": ["r"]}`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"p.rego": "package cloudmux.placement\nscore[p.id] := " + tc.score + " if some p in input.peers\n"}}, "t", "")
			if err != nil {
				t.Fatal(err)
			}
			e := newEngine(t, policy.EngineConfig{Versions: vs})
			d, err := e.Explain(ctx, v.ID, policy.Request{Kind: "server"}, []registry.Peer{privateRoomy})
			if tc.reason == "" {
				if !errors.Is(err, policy.ErrEvaluation) {
					t.Fatalf("err = %v, want ErrEvaluation", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Verdicts[0]; got.Score != tc.want || !slices.Contains(got.Reasons, tc.reason) {
				t.Fatalf("score %d reasons %q, want %d and %q", got.Score, got.Reasons, tc.want, tc.reason)
			}
		})
	}
}

// TestWaitActive: WaitActive returns once Run has loaded the version just
// activated, and not before: an activating broker answers when its own
// placements use the new version.
func TestWaitActive(t *testing.T) {
	ctx := t.Context()
	vs := policy.NewVersions(registry.NewMemory())
	e := newEngine(t, policy.EngineConfig{Versions: vs})
	v, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"p.rego": "package cloudmux.placement\nscore[p.id] := 7 if some p in input.peers\n"}}, "t", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vs.Activate(ctx, v.ID, "t"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.Run(ctx) }()
	if err := e.WaitActive(ctx, v.ID); err != nil || e.Active() != v.ID {
		t.Fatalf("WaitActive = %v; deciding %s, want %s", err, e.Active(), v.ID)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.WaitActive(cancelled, "no-such-version"); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitActive for a version never active = %v, want the context's error", err)
	}
}

// TestObjectBytesInInput: a rule reads a peer's object-storage capacity
// (input.peer.capacity.object_bytes), as an admin placing containers
// would, with its total, used and free.
func TestObjectBytesInInput(t *testing.T) {
	vs := policy.NewVersions(registry.NewMemory())
	ctx := context.Background()
	rule := `package cloudmux.placement
deny contains sprintf("object storage %d of %d bytes free", [c.free, c.total]) if {
	c := input.peer.capacity.object_bytes
	c.free < 1000
}
`
	v, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"p.rego": rule}}, "t", "")
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, policy.EngineConfig{Versions: vs})
	roomy, full := privateRoomy, privateFull
	roomy.Capacity.ObjectBytes, full.Capacity.ObjectBytes = res(1<<30, 1<<20), res(4096, 3500)
	d, err := e.Explain(ctx, v.ID, policy.Request{Kind: "server"}, []registry.Peer{roomy, full})
	if err != nil {
		t.Fatal(err)
	}
	for _, vd := range d.Verdicts {
		denied := slices.Contains(vd.Reasons, "object storage 596 of 4096 bytes free")
		if want := vd.Peer.ID == full.ID; denied != want || vd.Allowed == want {
			t.Errorf("peer %s: allowed %v, reasons %q; want denied %v", vd.Peer.Name, vd.Allowed, vd.Reasons, want)
		}
	}
}
