package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

type env struct {
	srv         *httptest.Server
	adminToken  string
	memberToken string
	reg         *registry.PeerRegistry
	store       *registry.Memory
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store := registry.NewMemory()
	log := logrus.New()
	log.SetOutput(io.Discard)
	reg := registry.NewPeerRegistry(store)
	snap := registry.NewPeerSnapshot(store, log)
	go func() { _ = snap.Run(ctx) }()
	if err := snap.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	pool := peers.NewPool(peers.PoolConfig{Source: snap, Credentials: reg, Log: log})
	dir := identity.NewDirectory(store)
	boot, err := dir.Bootstrap(ctx, "admin-password", true)
	if err != nil {
		t.Fatal(err)
	}
	tokens := identity.NewTokens(store, log)
	go func() { _ = tokens.Run(ctx, time.Hour) }()
	keystone := &identity.Keystone{Dir: dir, Tokens: tokens, Catalog: identity.StaticCatalog(identity.DefaultServices), Log: log}
	admin, _, err := tokens.Issue(ctx, identity.Token{UserID: boot.User.ID, UserName: "admin", ProjectID: boot.Project.ID,
		AdminProject: true, Roles: []identity.Role{boot.Roles[identity.RoleAdmin]}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	member, _, err := tokens.Issue(ctx, identity.Token{UserID: "u1", UserName: "alice", ProjectID: boot.Project.ID,
		Roles: []identity.Role{boot.Roles[identity.RoleMember]}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(broker.New(broker.Config{Peers: reg, Snapshot: snap, Pool: pool, Identity: keystone,
		Index: index.New(store), BrokerID: "test-installation", Log: log, Version: "test"}))
	t.Cleanup(srv.Close)
	return &env{srv: srv, adminToken: admin, memberToken: member, reg: reg, store: store}
}

type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Fields  []struct {
			Field, Reason string
		} `json:"fields"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func (e *env) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

const validPeer = `{"name":"eu","kind":"openstack","endpoint":{"auth_url":"http://127.0.0.1:1/v3"},
 "credentials":{"username":"u","password":"pw-secret","user_domain_name":"Default"}}`

func TestPeerAPIBadInput(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   string
		code   int
		fields []string
	}{
		{"malformed json", "POST", "/v1/peers/", e.adminToken, `{"name":`, 400, nil},
		{"empty body", "POST", "/v1/peers/", e.adminToken, ``, 400, nil},
		{"unknown field", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"local","colour":"red"}`, 400, []string{"colour"}},
		{"wrong type", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"local","labels":["a"]}`, 400, []string{"labels"}},
		{"trailing data", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"local"} {}`, 400, nil},
		{"every problem", "POST", "/v1/peers/", e.adminToken, `{"name":"","kind":"k8s","endpoint":{"auth_url":"::"},"cost":{"currency":"eur"}}`, 400,
			[]string{"cost.currency", "endpoint.auth_url", "kind", "name"}},
		{"openstack without credentials", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"openstack","endpoint":{"auth_url":"http://h/v3"}}`, 400, []string{"credentials"}},
		{"member may not manage peers", "GET", "/v1/peers/", e.memberToken, ``, 403, nil},
		{"no token", "GET", "/v1/peers/", "", ``, 401, nil},
		{"bad clouds.yaml", "POST", "/v1/peers/import", e.adminToken, "clouds: {x: {auth: {}}}", 400,
			[]string{"clouds.x.auth.auth_url", "clouds.x.auth.username", "clouds.x.auth.password"}},
		{"bad label filter", "GET", "/v1/peers/?label=novalue", e.adminToken, ``, 400, []string{"label"}},
		{"method not allowed", "PUT", "/v1/peers/", e.adminToken, `{}`, 405, nil},
		{"unknown credentials field", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"openstack","endpoint":{"auth_url":"http://h/v3"},"credentials":{"username":"u","pasword":"p"}}`, 400, []string{"credentials.pasword"}},
		{"mistyped credentials field", "PUT", "/v1/peers/nope/credentials", e.adminToken, `{"password":7}`, 400, []string{"credentials.password"}},
		{"trailing brace", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"local"}}`, 400, nil},
		{"too many labels", "POST", "/v1/peers/", e.adminToken, manyLabels(100), 400, []string{"labels"}},
		{"body too large", "POST", "/v1/peers/", e.adminToken, `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, nil},
		{"path-like user name is just unknown", "POST", "/v1/auth/tokens", "", `{"username":"../users/admin","password":"x"}`, 401, nil},
		{"negative cost", "POST", "/v1/peers/", e.adminToken, `{"name":"x","kind":"local","cost":{"vcpu_hour":-1}}`, 400, []string{"cost.vcpu_hour"}},
		{"missing peer", "GET", "/v1/peers/nope", e.adminToken, ``, 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, raw := e.call(t, tc.method, tc.path, tc.token, tc.body)
			if code != tc.code {
				t.Fatalf("%s %s = %d %s; want %d", tc.method, tc.path, code, raw, tc.code)
			}
			var body errorBody
			if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code != tc.code || body.Error.Message == "" || body.Error.RequestID == "" {
				t.Fatalf("error body %s: want code, message and request_id (%v)", raw, err)
			}
			var got []string
			for _, f := range body.Error.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("fields = %v, want %v (%s)", got, tc.fields, raw)
			}
		})
	}
	if code, raw := e.call(t, "GET", "/v1/peers/", e.adminToken, ""); code != 200 || bytes.Contains(raw, []byte(`"name": "x"`)) {
		t.Fatalf("a refused create stored something: %s", raw)
	}
}

func TestPeerAPILifecycle(t *testing.T) {
	e := newEnv(t)
	code, raw := e.call(t, "POST", "/v1/peers/", e.adminToken, validPeer)
	if code != 201 {
		t.Fatalf("create = %d %s", code, raw)
	}
	if bytes.Contains(raw, []byte("pw-secret")) {
		t.Fatalf("create answer leaks the password: %s", raw)
	}
	var created struct {
		Peer struct {
			ID             string `json:"id"`
			Revision       uint64 `json:"revision"`
			HasCredentials bool   `json:"has_credentials"`
		}
	}
	if err := json.Unmarshal(raw, &created); err != nil || !created.Peer.HasCredentials {
		t.Fatalf("create answer %s (%v)", raw, err)
	}
	// Read-your-writes: the list (served from the snapshot) shows it at once.
	if code, raw := e.call(t, "GET", "/v1/peers/", e.adminToken, ""); code != 200 || !bytes.Contains(raw, []byte(created.Peer.ID)) {
		t.Fatalf("list after create = %d %s", code, raw)
	}
	steps := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"duplicate", "POST", "/v1/peers/", validPeer, 409, "already exists"},
		{"patch labels", "PATCH", "/v1/peers/eu", `{"labels":{"tier":"public"}}`, 200, `"tier": "public"`},
		{"stale revision", "PATCH", "/v1/peers/eu", `{"labels":{"tier":"x"},"revision":1}`, 409, "changed since revision"},
		{"prober-owned status", "PATCH", "/v1/peers/eu", `{"status":"up"}`, 200, `"status": "down"`},
		{"status down refused", "PATCH", "/v1/peers/eu", `{"status":"down"}`, 400, "prober sets the rest"},
		{"maintenance", "PATCH", "/v1/peers/eu", `{"status":"maintenance","status_reason":"swap"}`, 200, `"status": "maintenance"`},
		{"new maintenance reason", "PATCH", "/v1/peers/eu", `{"status_reason":"longer swap"}`, 200, `"status_reason": "longer swap"`},
		{"leave maintenance", "PATCH", "/v1/peers/eu", `{"status":"up"}`, 200, "not probed yet"},
		{"reason outside maintenance", "PATCH", "/v1/peers/eu", `{"status_reason":"x"}`, 400, "status_reason"},
		{"bad credentials", "PUT", "/v1/peers/eu/credentials", `{"auth_type":"token"}`, 400, "credentials.token"},
		{"new credentials", "PUT", "/v1/peers/eu/credentials", `{"auth_type":"token","token":"tok-secret"}`, 204, ""},
		{"show by name", "GET", "/v1/peers/eu", "", 200, `"connected": false`},
		{"delete", "DELETE", "/v1/peers/eu", "", 204, ""},
		{"list after delete", "GET", "/v1/peers/", "", 200, `"peers": []`},
		{"delete again", "DELETE", "/v1/peers/eu", "", 404, "not found"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, raw := e.call(t, st.method, st.path, e.adminToken, st.body)
			if code != st.code || !bytes.Contains(raw, []byte(st.want)) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", st.method, st.path, code, raw, st.code, st.want)
			}
			if bytes.Contains(raw, []byte("secret")) {
				t.Fatalf("answer leaks a secret: %s", raw)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	code, raw := e.call(t, "POST", "/v1/auth/tokens", "", `{"username":"admin","password":"admin-password","ttl":"1h"}`)
	if code != 201 {
		t.Fatalf("login = %d %s", code, raw)
	}
	var out struct{ Token string }
	_ = json.Unmarshal(raw, &out)
	if code, _ := e.call(t, "GET", "/v1/auth/tokens", out.Token, ""); code != 200 {
		t.Fatalf("whoami = %d", code)
	}
	if code, _ := e.call(t, "DELETE", "/v1/auth/tokens", out.Token, ""); code != 204 {
		t.Fatalf("revoke = %d", code)
	}
	if code, _ := e.call(t, "GET", "/v1/auth/tokens", out.Token, ""); code != 401 {
		t.Fatalf("revoked token still works: %d", code)
	}
	for _, tc := range []struct{ name, body string }{
		{"wrong password", `{"username":"admin","password":"nope"}`},
		{"unknown user", `{"username":"mallory","password":"nope"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, raw := e.call(t, "POST", "/v1/auth/tokens", "", tc.body); code != 401 || !bytes.Contains(raw, []byte("wrong user name or password")) {
				t.Fatalf("= %d %s", code, raw)
			}
		})
	}
	if code, raw := e.call(t, "POST", "/v1/auth/tokens", "", `{"ttl":"forever"}`); code != 400 || !bytes.Contains(raw, []byte(`"ttl"`)) || !bytes.Contains(raw, []byte(`"username"`)) {
		t.Fatalf("bad login body = %d %s", code, raw)
	}
	// Token records hold only a hash: nothing in the store is a usable token.
	kvs, _, _ := e.store.List(context.Background(), "auth/tokens/")
	for _, kv := range kvs {
		if strings.Contains(kv.Key, out.Token) || bytes.Contains(kv.Value, []byte(out.Token)) {
			t.Fatalf("token stored in clear under %s", kv.Key)
		}
	}
}

func manyLabels(n int) string {
	labels := map[string]string{}
	for i := range n {
		labels[fmt.Sprintf("k%d", i)] = "v"
	}
	b, _ := json.Marshal(map[string]any{"name": "x", "kind": "local", "labels": labels})
	return string(b)
}

// TestImportIsAllOrNothing: when one entry cannot be created, the entries
// created before it are removed again.
func TestImportIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	// The store fails the second entry's name reservation.
	e.store.InjectFault(func(op registry.Op, key string) error {
		if op == registry.OpCAS && key == "peers/names/zz" {
			return registry.ErrUnavailable
		}
		return nil
	})
	doc := `clouds:
  aa: {auth: {auth_url: "http://127.0.0.1:1/v3", username: u, password: p, user_domain_name: Default}}
  zz: {auth: {auth_url: "http://127.0.0.1:1/v3", username: u, password: p, user_domain_name: Default}}
`
	code, raw := e.call(t, "POST", "/v1/peers/import", e.adminToken, doc)
	if code != http.StatusServiceUnavailable || !bytes.Contains(raw, []byte("nothing imported")) {
		t.Fatalf("import = %d %s; want 503 saying nothing was imported", code, raw)
	}
	e.store.InjectFault(nil)
	if _, err := e.reg.Get(context.Background(), "aa"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a failed import left peer aa behind: %v", err)
	}
}

// TestIndexRebuildAPI: the rebuild is an admin's tool; it answers its
// report, and a member is refused.
func TestIndexRebuildAPI(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"admin", e.adminToken, http.StatusOK},
		{"member", e.memberToken, http.StatusForbidden},
		{"anonymous", "", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.call(t, http.MethodPost, "/v1/index/rebuild", tc.token, "")
			if code != tc.want {
				t.Fatalf("POST /v1/index/rebuild = %d %s, want %d", code, body, tc.want)
			}
			if code == http.StatusOK {
				var out struct {
					Rebuild index.RebuildReport `json:"rebuild"`
				}
				if err := json.Unmarshal(body, &out); err != nil || out.Rebuild.Added == nil {
					t.Fatalf("report %s: %v", body, err)
				}
			}
		})
	}
}

// TestLoginRefusesProjectOfDisabledDomain: /v3 refuses a project of a
// disabled domain; /v1/auth/tokens must too.
func TestLoginRefusesProjectOfDisabledDomain(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := identity.NewDirectory(e.store)
	x, err := dir.CreateDomain(ctx, identity.Domain{Name: "x", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := dir.CreateProject(ctx, identity.Project{Name: "px", DomainID: x.ID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := dir.CreateUser(ctx, identity.User{Name: "ux", DomainID: identity.DefaultDomainID, Enabled: true, DefaultProjectID: p.ID}, "ux-pw")
	if err != nil {
		t.Fatal(err)
	}
	member, err := dir.FindRole(ctx, identity.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: member.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.UpdateDomain(ctx, x.ID, func(d *identity.Domain) { d.Enabled = false }); err != nil {
		t.Fatal(err)
	}
	code, raw := e.call(t, "POST", "/v1/auth/tokens", "", `{"username":"ux","password":"ux-pw"}`)
	if code != 401 {
		t.Fatalf("/v1 login to a project of disabled domain x: %d %s, want 401", code, raw)
	}
}
