package ui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/deployres"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/broker/ui"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

const testBroker = "ui-broker"

// env is the dashboards over the service layers, two local-cloud peers
// (fake driver, seeded like a fresh devstack) and users of two projects.
type env struct {
	*brokertest.Env
	servers *compute.Servers
	vols    *volume.Service
	engine  *deploy.Engine
}

func newEnv(t *testing.T) *env { return newEnvWith(t, 0) }

// newEnvWith's peers take transition to boot, stop or reboot a guest.
func newEnvWith(t *testing.T, transition time.Duration) *env {
	t.Helper()
	e := &env{}
	ps := brokertest.Seeded(t, "alpha", "beta")
	for i := range ps {
		ps[i].Transition = transition
	}
	e.Env = brokertest.New(t, ps, func(be *brokertest.Env, r chi.Router) {
		decisions := policy.NewDecisions(be.Store, 0, 0)
		versions := policy.NewVersions(be.Store)
		engine, err := policy.NewEngine(be.Ctx, policy.EngineConfig{Versions: versions, Decisions: decisions, Log: be.Log})
		if err != nil {
			t.Fatal(err)
		}
		ledger := quota.NewLedger(be.Store, testBroker, be.Log)
		images := &image.Service{Pool: be.Pool, Index: be.Index, Placer: engine, Store: be.Store, Log: be.Log, BrokerID: testBroker}
		nets := &network.Service{Pool: be.Pool, Index: be.Index, Store: be.Store, Placer: engine, Quota: ledger, Log: be.Log, BrokerID: testBroker}
		keys := compute.NewKeypairStore(be.Store)
		keys.Quota = ledger
		be.Start(t, keys)
		e.vols = &volume.Service{Pool: be.Pool, Index: be.Index, Placer: engine, Images: images, Store: be.Store, Quota: ledger, Log: be.Log, BrokerID: testBroker}
		e.servers = &compute.Servers{Pool: be.Pool, Index: be.Index, Placer: engine, Images: images, Networks: nets, Volumes: e.vols,
			Keypairs: keys, Store: be.Store, Log: be.Log, BrokerID: testBroker, Quota: ledger}
		cat := &focus.Catalog{Store: be.Store}
		e.engine = &deploy.Engine{Store: be.Store, Placer: engine, Resolver: cat, Uses: cat, Holder: testBroker,
			PollInterval: 20 * time.Millisecond}
		adapter := &deployres.Adapter{Servers: e.servers, Keypairs: keys, Networks: nets, Images: images, Volumes: e.vols,
			Quota: ledger, Pool: be.Pool}
		e.engine.Resources, e.engine.Peers = adapter, adapter
		go func() { _ = e.engine.Serve(be.Ctx) }()
		snap := registry.NewPeerSnapshot(be.Store, be.Log)
		go func() { _ = snap.Run(be.Ctx) }()
		if err := snap.WaitReady(be.Ctx); err != nil {
			t.Fatal(err)
		}
		dash, err := ui.New(ui.Config{Keystone: be.Keystone, Servers: e.servers, Keypairs: keys, Volumes: e.vols, Images: images,
			Networks: nets, Templates: &templatesapi.API{Catalog: cat, Engine: e.engine, Log: be.Log},
			Policy: &policyapi.API{Versions: versions, Decisions: decisions, Engine: engine, Candidates: policyapi.PoolCandidates(be.Pool), Log: be.Log}, Peers: snap, PeerAdmin: registry.NewPeerRegistry(be.Store), Log: be.Log})
		if err != nil {
			t.Fatal(err)
		}
		r.Handle(ui.Prefix, dash)
		r.Handle(ui.Prefix+"/*", dash)
	})
	return e
}

// browser is one user's cookie jar against the dashboards.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a page and remembers the CSRF token it carries.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.e.Server.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindStringSubmatch(string(raw)); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, string(raw)
}

// post submits a form with the last CSRF token seen (unless form sets
// its own csrf) and returns the status, Location and body.
func (b *browser) post(path string, form url.Values) (int, string, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequestWithContext(b.e.Ctx, http.MethodPost, b.e.Server.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(raw)
}

// login logs user in and fails the test unless it lands on the overview.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.get("/ui/login")
	code, loc, body := b.post("/ui/login", url.Values{"username": {user}, "password": {password}})
	if code != http.StatusSeeOther || loc != "/ui/" {
		b.t.Fatalf("login %s: %d %q %s", user, code, loc, body)
	}
	b.get("/ui/")
}

// member makes a member user of project and returns a logged-in browser.
func (e *env) member(t *testing.T, user, project string) *browser {
	t.Helper()
	pw := e.Member(t, user, project, identity.RoleMember)
	b := e.browser(t)
	b.login(user, pw)
	return b
}

func (e *env) admin(t *testing.T) *browser {
	b := e.browser(t)
	b.login("admin", brokertest.AdminPassword)
	return b
}

// Member2 gives an existing user the member role on another project.
func (e *env) Member2(t *testing.T, user, project string) {
	t.Helper()
	p, err := e.Dir.CreateProject(e.Ctx, identity.Project{Name: project, DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, user)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Dir.Grant(e.Ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: e.Boot.Roles[identity.RoleMember].ID}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) Registry() *registry.PeerRegistry { return registry.NewPeerRegistry(e.Store) }
