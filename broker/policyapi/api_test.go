package policyapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// harness is a broker with the policy API at /v1, an engine following the
// store, and the three-peer pool of a hybrid cloud: one private local
// cloud with little disk, two public ones at different costs (local
// clouds too, labelled public: the fake driver stands in for remote
// OpenStack).
type harness struct {
	env       *brokertest.Env
	engine    *policy.Engine
	versions  *policy.Versions
	decisions *policy.Decisions
	admin     string // tokens
	member    string
	other     string
}

func newHarness(t *testing.T) *harness {
	h := &harness{}
	h.env = brokertest.New(t, []brokertest.Peer{{Name: "private", DiskGiB: 20}, {Name: "cheap", DiskGiB: 1000}, {Name: "dear", DiskGiB: 1000}},
		func(e *brokertest.Env, r chi.Router) {
			h.versions = policy.NewVersions(e.Store)
			h.decisions = policy.NewDecisions(e.Store, 0, 0)
			eng, err := policy.NewEngine(e.Ctx, policy.EngineConfig{Versions: h.versions, Decisions: h.decisions, Log: e.Log})
			if err != nil {
				t.Fatal(err)
			}
			h.engine = eng
			api := &policyapi.API{Versions: h.versions, Decisions: h.decisions, Engine: eng, Auth: e.Keystone.Authenticate, Log: e.Log,
				Candidates: func() []registry.Peer { return h.candidates(t) }}
			r.Route("/v1", api.Routes)
		})
	go func() { _ = h.engine.Run(h.env.Ctx) }()
	reg := registry.NewPeerRegistry(h.env.Store)
	for name, labels := range map[string]map[string]string{
		"private": {"tier": "private"}, "cheap": {"tier": "public", "cost": "0.05"}, "dear": {"tier": "public", "cost": "0.40"},
	} {
		p, err := reg.Get(h.env.Ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		p.Labels = labels
		if _, err := reg.Update(h.env.Ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	h.admin = h.env.Provider(t, "admin", brokertest.AdminPassword, "admin").TokenID
	h.member = h.env.Provider(t, "alice", h.env.Member(t, "alice", "proj-a", "member"), "proj-a").TokenID
	h.other = h.env.Provider(t, "bob", h.env.Member(t, "bob", "proj-b", "member"), "proj-b").TokenID
	return h
}

// candidates are the connected peers as the broker would pass them: the
// registry's record (labels) with the capacity the peer reports now.
func (h *harness) candidates(t *testing.T) []registry.Peer {
	reg := registry.NewPeerRegistry(h.env.Store)
	var out []registry.Peer
	for _, m := range h.env.Pool.Members() {
		if m.Cloud == nil {
			continue
		}
		p, err := reg.Get(h.env.Ctx, m.Peer.ID)
		if err != nil {
			t.Error(err)
			continue
		}
		if p.Capacity, err = m.Cloud.Capacity(h.env.Ctx); err != nil {
			t.Error(err)
		}
		out = append(out, p)
	}
	return out
}

func (h *harness) do(t *testing.T, method, path, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case *multipart.Writer:
		t.Fatal("use doRaw for multipart")
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	return h.doRaw(t, method, path, token, ct, rd, out)
}

func (h *harness) doRaw(t *testing.T, method, path, token, ct string, rd io.Reader, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(h.env.Ctx, method, h.env.Server.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type apiErr struct {
	Error struct {
		Code      int               `json:"code"`
		Message   string            `json:"message"`
		Positions []policy.Position `json:"positions"`
		RequestID string            `json:"request_id"`
	} `json:"error"`
}

const closed = "package cloudmux.placement\n\ndeny[p.id] contains \"closed\" if some p in input.peers\n"

func TestPolicyLifecycleOverHTTP(t *testing.T) {
	h := newHarness(t)
	type listOut struct {
		Policies []policy.Summary `json:"policies"`
		Active   policy.Active    `json:"active"`
	}
	type upOut struct {
		Policy struct {
			ID string `json:"id"`
		} `json:"policy"`
		Active policy.Active `json:"active"`
	}
	var e apiErr
	if code := h.do(t, "GET", "/v1/policies/", h.member, nil, &e); code != http.StatusForbidden || e.Error.RequestID == "" {
		t.Fatalf("member lists policies: %d %+v, want 403 with a request ID", code, e)
	}
	if code := h.do(t, "GET", "/v1/policies/", "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d, want 401", code)
	}

	var up upOut
	good := map[string]any{"modules": map[string]string{"closed.rego": closed}, "comment": "maintenance"}
	if code := h.do(t, "POST", "/v1/policies/", h.admin, good, &up); code != http.StatusCreated || up.Policy.ID == "" {
		t.Fatalf("upload: %d %+v", code, up)
	}
	v1 := up.Policy.ID
	if code := h.do(t, "POST", "/v1/policies/", h.admin, good, &up); code != http.StatusOK || up.Policy.ID != v1 {
		t.Fatalf("same upload again: %d %s, want 200 %s", code, up.Policy.ID, v1)
	}
	changed := h.engine.Changed()
	var act struct{ Active policy.Active }
	if code := h.do(t, "POST", "/v1/policies/"+v1+"/activate", h.admin, nil, &act); code != http.StatusOK || act.Active.Version != v1 {
		t.Fatalf("activate: %d %+v", code, act)
	}
	for h.engine.Active() != v1 { // the engine follows the store
		select {
		case <-changed:
			changed = h.engine.Changed()
		case <-h.env.Ctx.Done():
			t.Fatal("the engine never switched")
		}
	}

	bad := map[string]any{"modules": map[string]string{"broken.rego": "package cloudmux.placement\n\ndeny[p.id] contains \"x\" if {\n\tsome p in input.peers\n\tq == 1\n}\n"},
		"tests": map[string]string{"broken_test.rego": "package t\n\ntest_x if {\n"}}
	e = apiErr{}
	if code := h.do(t, "POST", "/v1/policies/", h.admin, bad, &e); code != http.StatusBadRequest {
		t.Fatalf("bad upload: %d %+v", code, e)
	}
	var where []string
	for _, p := range e.Error.Positions {
		where = append(where, fmt.Sprintf("%s:%d", p.File, p.Row))
	}
	if got := strings.Join(where, ","); !strings.Contains(got, "broken_test.rego:4") {
		t.Fatalf("positions %v lack the test file's error", e.Error.Positions)
	}
	var list listOut
	if code := h.do(t, "GET", "/v1/policies/", h.admin, nil, &list); code != http.StatusOK || list.Active.Version != v1 || len(list.Policies) != 2 {
		t.Fatalf("after the bad upload: %d %+v; want %s still active, 2 versions (it and stock)", code, list, v1)
	}

	// Multipart, as curl -F file=@dir/x.rego sends it; activated at once.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "open.rego")
	_, _ = fw.Write([]byte("package cloudmux.placement\n\nscore[p.id] := 50 if some p in input.peers\n"))
	fw, _ = mw.CreateFormFile("file", "open_test.rego")
	_, _ = fw.Write([]byte("package open_test\n\nimport data.cloudmux.placement\n\ntest_fifty if {\n\tplacement.score[\"p-cheap\"] == 50 with input as {\"peers\": [data.cloudmux.fixtures.peers.cheap]}\n}\n"))
	_ = mw.WriteField("activate", "true")
	_ = mw.Close()
	up = upOut{}
	if code := h.doRaw(t, "POST", "/v1/policies/", h.admin, mw.FormDataContentType(), &buf, &up); code != http.StatusCreated || up.Active.Version != up.Policy.ID {
		t.Fatalf("multipart upload: %d %+v", code, up)
	}
	var show struct{ Policy policy.Version }
	if code := h.do(t, "GET", "/v1/policies/active", h.admin, nil, &show); code != http.StatusOK || show.Policy.ID != up.Policy.ID || show.Policy.Tests["open_test.rego"] == "" {
		t.Fatalf("show active: %d %+v", code, show.Policy.ID)
	}
	act = struct{ Active policy.Active }{}
	if code := h.do(t, "POST", "/v1/policies/rollback", h.admin, nil, &act); code != http.StatusOK || act.Active.Version != v1 {
		t.Fatalf("rollback: %d %+v, want %s", code, act, v1)
	}
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"unknown version", "GET", "/v1/policies/0123456789abcdef", http.StatusNotFound},
		{"not a version", "POST", "/v1/policies/..%2F..%2Fetc/activate", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := h.do(t, tc.method, tc.path, h.admin, nil, nil); code != tc.want {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, code, tc.want)
			}
		})
	}
}

type explainOut struct {
	Decision struct {
		Policy   string                 `json:"policy"`
		Order    []string               `json:"order"`
		Verdicts []policy.VerdictRecord `json:"verdicts"`
	} `json:"decision"`
}

func TestExplain(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name  string
		token func() string
		body  string
		code  int
		order string // allowed peers, best first
		deny  string // "peer: reason" one denied peer must give
	}{
		{"a member asks for a small volume", func() string { return h.member }, `{"request": {"kind": "volume", "resources": {"disk_gib": 5}}}`, 200, "private,cheap,dear", ""},
		{"too big for the private peer", func() string { return h.member }, `{"request": {"kind": "volume", "resources": {"disk_gib": 50}}}`, 200, "cheap,dear", "private: needs 50 GiB of disk"},
		{"required label", func() string { return h.member }, `{"request": {"kind": "server", "hints": {"required_labels": {"tier": "public"}}}}`, 200, "cheap,dear", "private: lacks required label tier=public"},
		{"a member cannot pick the version", func() string { return h.member }, `{"request": {"kind": "server"}, "version": "stock"}`, 403, "", ""},
		{"a member cannot bring peers", func() string { return h.member }, `{"request": {"kind": "server"}, "peers": []}`, 403, "", ""},
		{"a member cannot explain for another project", func() string { return h.member }, `{"request": {"kind": "server", "project": "someone-else"}}`, 403, "", ""},
		{"kind is needed", func() string { return h.member }, `{"request": {}}`, 400, "", ""},
		{"unknown fields are refused", func() string { return h.member }, `{"request": {"kind": "server", "flavour": "x"}}`, 400, "", ""},
		{"an admin explains against hypothetical peers", func() string { return h.admin },
			`{"request": {"kind": "server"}, "version": "stock", "peers": [{"id": "x", "name": "x", "kind": "openstack", "status": "down"}, {"id": "y", "name": "y", "kind": "local", "status": "up"}]}`,
			200, "y", "x: status is down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out explainOut
			var e apiErr
			var dst any = &out
			if tc.code != 200 {
				dst = &e
			}
			code := h.do(t, "POST", "/v1/placement/explain", tc.token(), []byte(tc.body), dst)
			if code != tc.code {
				t.Fatalf("= %d %+v, want %d", code, e, tc.code)
			}
			if code != 200 {
				return
			}
			if got := strings.Join(out.Decision.Order, ","); got != tc.order {
				t.Fatalf("order %s, want %s: %+v", got, tc.order, out.Decision.Verdicts)
			}
			if tc.deny != "" {
				name, reason, _ := strings.Cut(tc.deny, ": ")
				found := false
				for _, v := range out.Decision.Verdicts {
					found = found || (v.PeerName == name && !v.Allowed && strings.Contains(strings.Join(v.Reasons, ";"), reason))
				}
				if !found {
					t.Fatalf("no %q among %+v", tc.deny, out.Decision.Verdicts)
				}
			}
			if len(out.Decision.Verdicts) == 0 {
				t.Fatal("no verdicts")
			}
		})
	}
	recs, err := h.decisions.Query(h.env.Ctx, policy.Query{})
	if err != nil || len(recs) != 0 {
		t.Fatalf("explain recorded %d decisions (%v); it must record none", len(recs), err)
	}
}

// TestBurstingOverHTTP is the broker's create path (as Cinder and Nova
// run it: place through the engine with the new resource's ID, create on
// the best allowed peer, fall back to the next on a capacity error)
// against real local clouds: 5 GiB volumes land on the private peer until
// its 20 GiB disk is full, then on the cheapest public peer; each
// decision, with every peer's reasons, is found by the volume's ID.
func TestBurstingOverHTTP(t *testing.T) {
	h := newHarness(t)
	ctx := h.env.Ctx
	projA, err := h.env.Dir.FindProject(ctx, identity.DefaultDomainID, "proj-a")
	if err != nil {
		t.Fatal(err)
	}
	var placed []string
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("vol-%d", i)
		d, err := h.engine.Place(ctx, policy.Request{Kind: "volume", Project: projA.ID, ResourceID: id, DiskGiB: 5}, h.candidates(t))
		if err != nil {
			t.Fatal(err)
		}
		on := ""
		for _, p := range d.Allowed() {
			m, ok := h.env.Pool.Get(p.ID)
			if !ok || m.Cloud == nil {
				continue
			}
			_, err := m.Cloud.CreateVolume(ctx, peers.VolumeSpec{Name: id, Project: projA.ID, SizeGiB: 5})
			if errors.Is(err, peers.ErrCapacity) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			on = p.Name
			break
		}
		placed, ids = append(placed, on), append(ids, id)
	}
	if got := strings.Join(placed, ","); got != "private,private,private,private,cheap,cheap" {
		t.Fatalf("volumes landed on %s", got)
	}
	type recsOut struct {
		Decisions []policy.Record `json:"decisions"`
	}
	var out recsOut
	if code := h.do(t, "GET", "/v1/decisions?resource="+ids[4], h.admin, nil, &out); code != http.StatusOK || len(out.Decisions) != 1 {
		t.Fatalf("decisions of %s: %d %+v", ids[4], code, out)
	}
	rec := out.Decisions[0]
	if strings.Join(rec.Order, ",") != "cheap,dear" || rec.Resource != ids[4] {
		t.Fatalf("record %+v, want order cheap,dear", rec)
	}
	for _, v := range rec.Verdicts {
		if v.PeerName == "private" && (v.Allowed || !strings.Contains(strings.Join(v.Reasons, ";"), "needs 5 GiB of disk, 0 free")) {
			t.Fatalf("private's verdict %+v, want denied for disk", v)
		}
	}
	for _, tc := range []struct {
		name, token, query string
		code, n            int
	}{
		{"the owner's project sees its decisions", h.member, "", 200, 6},
		{"another project sees none", h.other, "", 200, 0},
		{"the owner by resource", h.member, "?resource=" + ids[0], 200, 1},
		{"another project by the owner's resource", h.other, "?resource=" + ids[0], 200, 0},
		{"the last hour", h.member, "?since=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), 200, 6},
		{"newest first, limited", h.admin, "?limit=2", 200, 2},
		{"a time range", h.admin, "?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z", 200, 0},
		{"a bad time", h.admin, "?since=yesterday", 400, 0},
		{"a bad limit", h.admin, "?limit=0", 400, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out recsOut
			var dst any = &out
			if tc.code != 200 {
				dst = nil
			}
			if code := h.do(t, "GET", "/v1/decisions"+tc.query, tc.token, nil, dst); code != tc.code || len(out.Decisions) != tc.n {
				t.Fatalf("= %d with %d decisions, want %d with %d", code, len(out.Decisions), tc.code, tc.n)
			}
		})
	}
}
