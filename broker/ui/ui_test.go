package ui_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/policy"
)

func TestLogin(t *testing.T) {
	e := newEnv(t)
	pw := e.Member(t, "alice", "proj-a", identity.RoleMember)
	for _, tc := range []struct {
		name     string
		user, pw string
		csrf     *string // nil: the form's own
		want     int
		wantText string
	}{
		{name: "wrong password", user: "alice", pw: "nope", want: http.StatusUnauthorized, wantText: "Wrong user name or password."},
		{name: "unknown user", user: "mallory", pw: "nope", want: http.StatusUnauthorized, wantText: "Wrong user name or password."},
		{name: "no login token", user: "alice", pw: pw, csrf: new(""), want: http.StatusForbidden, wantText: "stale"},
		{name: "forged login token", user: "alice", pw: pw, csrf: new("forged"), want: http.StatusForbidden, wantText: "stale"},
		{name: "right password", user: "alice", pw: pw, want: http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser(t)
			b.get("/ui/login")
			form := url.Values{"username": {tc.user}, "password": {tc.pw}}
			if tc.csrf != nil {
				form.Set("csrf", *tc.csrf)
			}
			code, _, body := b.post("/ui/login", form)
			if code != tc.want || !strings.Contains(body, tc.wantText) {
				t.Fatalf("got %d %s", code, body)
			}
			if tc.want != http.StatusSeeOther {
				if code, _ := b.get("/ui/"); code != http.StatusSeeOther {
					t.Fatalf("no session, yet the overview answered %d", code)
				}
				return
			}
			u, _ := url.Parse(e.Server.URL + "/ui/")
			var found bool
			for _, c := range b.c.Jar.Cookies(u) {
				found = found || c.Name == "cloudmux_session"
			}
			if !found {
				t.Fatal("no session cookie")
			}
			if code, body := b.get("/ui/"); code != http.StatusOK || !strings.Contains(body, "Overview of proj-a") {
				t.Fatalf("overview: %d %s", code, body)
			}
		})
	}
}

func TestSessionCookieAndHeaders(t *testing.T) {
	e := newEnv(t)
	pw := e.Member(t, "alice", "proj-a", identity.RoleMember)
	b := e.browser(t)
	b.get("/ui/login")
	req, _ := http.NewRequestWithContext(e.Ctx, http.MethodPost, e.Server.URL+"/ui/login",
		strings.NewReader(url.Values{"username": {"alice"}, "password": {pw}, "csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "cloudmux_session=") {
			cookie = c
		}
	}
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	for _, path := range []string{"/ui/login", "/ui/", "/ui/instances"} {
		t.Run(path, func(t *testing.T) {
			resp, err := b.c.Get(e.Server.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP %q", csp)
			}
			for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
				if got := resp.Header.Get(h); got != want {
					t.Errorf("%s: %q", h, got)
				}
			}
		})
	}
}

// inlineScript finds script or style that the CSP would block: every page
// must work without it.
var inlineScript = regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|\sstyle="|\son[a-z]+="`)

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.member(t, "alice", "proj-a")
	for _, tc := range []struct {
		name string
		path string
		csrf string
	}{
		{name: "launch without token", path: "/ui/instances", csrf: ""},
		{name: "launch with another token", path: "/ui/instances", csrf: "x" + b.csrf[1:]},
		{name: "logout without token", path: "/ui/logout", csrf: ""},
		{name: "project switch without token", path: "/ui/project", csrf: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := b.post(tc.path, url.Values{"csrf": {tc.csrf}, "name": {"web"}})
			if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Fatalf("got %d %s", code, body)
			}
		})
	}
	// Still logged in: the refused logout did nothing.
	if code, _ := b.get("/ui/"); code != http.StatusOK {
		t.Fatalf("overview after refused posts: %d", code)
	}
	t.Run("cross-origin", func(t *testing.T) {
		form := url.Values{"csrf": {b.csrf}}
		req, _ := http.NewRequestWithContext(e.Ctx, http.MethodPost, e.Server.URL+"/ui/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}

var idRe = regexp.MustCompile(`/ui/instances/([0-9a-f-]{36})`)

// launch launches an instance from the form's first flavor and image and
// returns its ID.
func launch(t *testing.T, b *browser, name string) string {
	t.Helper()
	code, body := b.get("/ui/instances/new")
	if code != http.StatusOK {
		t.Fatalf("launch form: %d %s", code, body)
	}
	flavor := regexp.MustCompile(`name="flavor"[^>]*>\s*<option value="([^"]+)"`).FindStringSubmatch(body)
	img := regexp.MustCompile(`name="image"[^>]*>\s*<option value="([^"]+)"`).FindStringSubmatch(body)
	if flavor == nil || img == nil {
		t.Fatalf("the form offers no flavor or image: %s", body)
	}
	code, loc, body := b.post("/ui/instances", url.Values{"name": {name}, "flavor": {flavor[1]}, "image": {img[1]}, "network": {"auto"}})
	m := idRe.FindStringSubmatch(loc)
	if code != http.StatusSeeOther || m == nil {
		t.Fatalf("launch: %d %q %s", code, loc, body)
	}
	return m[1]
}

func TestInstances(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	id := launch(t, alice, "web-1")

	code, body := alice.get("/ui/instances")
	if code != http.StatusOK || !strings.Contains(body, "web-1") || !regexp.MustCompile(`<td>(alpha|beta)</td>`).MatchString(body) {
		t.Fatalf("list: %d %s", code, body)
	}
	if inlineScript.MatchString(body) {
		t.Fatalf("the list has inline script or style: %s", inlineScript.FindString(body))
	}
	code, body = alice.get("/ui/instances/" + id)
	if code != http.StatusOK || !strings.Contains(body, `id="why-here"`) {
		t.Fatalf("detail without its placement decision: %d %s", code, body)
	}
	code, body = alice.get("/ui/instances/" + id + "/console")
	if code != http.StatusOK || !strings.Contains(body, `class="console"`) {
		t.Fatalf("console: %d %s", code, body)
	}
	code, body = alice.get("/ui/")
	if code != http.StatusOK || !regexp.MustCompile(`<td>(alpha|beta)</td><td>1</td>`).MatchString(body) {
		t.Fatalf("overview does not place the instance: %s", body)
	}
	t.Run("placement preview", func(t *testing.T) {
		_, form := alice.get("/ui/instances/new")
		img := regexp.MustCompile(`name="image"[^>]*>\s*<option value="([^"]+)"`).FindStringSubmatch(form)[1]
		for _, tc := range []struct {
			name, query, want string
		}{
			{name: "flavor and image", query: "?flavor=m1.nano&image=" + img, want: `id="preview-verdicts"`},
			{name: "no flavor", query: "?image=" + img, want: "Choose a flavor"},
			{name: "another's image", query: "?flavor=m1.nano&image=00000000-0000-0000-0000-000000000000", want: "not available"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body := alice.get("/ui/instances/preview" + tc.query)
				if code != http.StatusOK || !strings.Contains(body, tc.want) {
					t.Fatalf("got %d %s", code, body)
				}
			})
		}
		if _, body := alice.get("/ui/instances/preview?flavor=m1.nano&image=" + img); !strings.Contains(body, "allowed") {
			t.Fatalf("no peer allowed: %s", body)
		}
	})
	t.Run("bad launch keeps the form", func(t *testing.T) {
		code, _, body := alice.post("/ui/instances", url.Values{"name": {"x"}, "flavor": {"no-such-flavor"}, "image": {"no-such-image"}})
		if code != http.StatusBadRequest || !strings.Contains(body, `id="launch-form"`) || !strings.Contains(body, `class="error"`) {
			t.Fatalf("got %d %s", code, body)
		}
	})
	t.Run("stop", func(t *testing.T) {
		code, loc, body := alice.post("/ui/instances/"+id+"/action", url.Values{"action": {"stop"}})
		if code != http.StatusSeeOther || loc != "/ui/instances/"+id {
			t.Fatalf("got %d %s", code, body)
		}
	})
	t.Run("delete", func(t *testing.T) {
		code, loc, body := alice.post("/ui/instances/"+id+"/delete", nil)
		if code != http.StatusSeeOther || loc != "/ui/instances" {
			t.Fatalf("got %d %s", code, body)
		}
		if code, _ := alice.get("/ui/instances/" + id); code != http.StatusNotFound {
			t.Fatalf("deleted instance shows: %d", code)
		}
	})
}

// TestTenantIsolation: another project's instance never renders, and
// every action on it is not found.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	bob := e.member(t, "bob", "proj-b")
	id := launch(t, alice, "alice-secret-vm")
	for _, tc := range []struct {
		name string
		do   func() (int, string)
		want int
	}{
		{name: "list", want: http.StatusOK, do: func() (int, string) { return bob.get("/ui/instances") }},
		{name: "overview", want: http.StatusOK, do: func() (int, string) { return bob.get("/ui/") }},
		{name: "detail", want: http.StatusNotFound, do: func() (int, string) { return bob.get("/ui/instances/" + id) }},
		{name: "console", want: http.StatusNotFound, do: func() (int, string) { return bob.get("/ui/instances/" + id + "/console") }},
		{name: "stop", want: http.StatusNotFound, do: func() (int, string) {
			code, _, body := bob.post("/ui/instances/"+id+"/action", url.Values{"action": {"stop"}})
			return code, body
		}},
		{name: "delete", want: http.StatusNotFound, do: func() (int, string) {
			code, _, body := bob.post("/ui/instances/"+id+"/delete", nil)
			return code, body
		}},
		{name: "switch into alice's project", want: http.StatusForbidden, do: func() (int, string) {
			_, body := alice.get("/ui/")
			m := regexp.MustCompile(`<option value="([0-9a-f]+)" selected>proj-a`).FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("no project switcher: %s", body)
			}
			bob.get("/ui/")
			code, _, body := bob.post("/ui/project", url.Values{"project": {m[1]}})
			return code, body
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tc.do()
			if code != tc.want || strings.Contains(body, "alice-secret-vm") || strings.Contains(body, id) && tc.want == http.StatusOK {
				t.Fatalf("got %d %s", code, body)
			}
		})
	}
	if code, body := alice.get("/ui/instances/" + id); code != http.StatusOK {
		t.Fatalf("alice lost her instance: %d %s", code, body)
	}
}

func TestProjectSwitch(t *testing.T) {
	e := newEnv(t)
	pw := e.Member(t, "carol", "proj-c", identity.RoleMember)
	e.Member2(t, "carol", "proj-d")
	b := e.browser(t)
	b.login("carol", pw)
	_, body := b.get("/ui/")
	m := regexp.MustCompile(`<option value="([0-9a-f]+)">proj-d`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no proj-d to switch to: %s", body)
	}
	code, loc, body := b.post("/ui/project", url.Values{"project": {m[1]}})
	if code != http.StatusSeeOther || loc != "/ui/" {
		t.Fatalf("switch: %d %s", code, body)
	}
	if _, body := b.get("/ui/"); !strings.Contains(body, "Overview of proj-d") {
		t.Fatalf("still on the old project: %s", body)
	}
}

func TestLogoutAndRevocation(t *testing.T) {
	e := newEnv(t)
	b := e.member(t, "alice", "proj-a")
	code, loc, _ := b.post("/ui/logout", nil)
	if code != http.StatusSeeOther || loc != "/ui/login" {
		t.Fatalf("logout: %d %s", code, loc)
	}
	if code, _ := b.get("/ui/"); code != http.StatusSeeOther {
		t.Fatalf("after logout the overview answered %d", code)
	}
	// A disabled user's session ends at its next request.
	b = e.member(t, "dave", "proj-a")
	u, err := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, "dave")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Keystone.Tokens.RevokeUser(e.Ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if code, _ := b.get("/ui/instances"); code != http.StatusSeeOther {
		t.Fatalf("a revoked user's session answered %d", code)
	}
}

func TestCosmosAdminOnly(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	for _, path := range []string{"/ui/admin/federation", "/ui/admin/policy", "/ui/admin/decisions"} {
		t.Run("member "+path, func(t *testing.T) {
			if code, body := alice.get(path); code != http.StatusForbidden || strings.Contains(body, "peer-alpha") {
				t.Fatalf("got %d %s", code, body)
			}
		})
	}
	t.Run("member maintenance", func(t *testing.T) {
		p, _ := e.Pool.Members()[0], 0
		if code, _, _ := alice.post("/ui/admin/peers/"+p.Peer.ID+"/maintenance", url.Values{"on": {"1"}}); code != http.StatusForbidden {
			t.Fatalf("got %d", code)
		}
	})
	admin := e.admin(t)
	code, body := admin.get("/ui/admin/federation")
	if code != http.StatusOK || !strings.Contains(body, `id="peer-alpha"`) || !strings.Contains(body, `id="peer-beta"`) {
		t.Fatalf("federation: %d %s", code, body)
	}
	if inlineScript.MatchString(body) {
		t.Fatalf("the map has inline script or style: %s", inlineScript.FindString(body))
	}
	id := regexp.MustCompile(`action="/ui/admin/peers/([^/]+)/maintenance"`).FindStringSubmatch(body)[1]
	code, _, body = admin.post("/ui/admin/peers/"+id+"/maintenance", url.Values{"on": {"1"}, "reason": {"disk swap"}})
	if code != http.StatusSeeOther {
		t.Fatalf("maintenance: %d %s", code, body)
	}
	p, err := e.Registry().Get(e.Ctx, id)
	if err != nil || p.Status != "maintenance" || p.StatusReason != "disk swap" {
		t.Fatalf("peer after maintenance: %+v %v", p, err)
	}
	if code, body := admin.get("/ui/admin/policy"); code != http.StatusOK || !strings.Contains(body, "active") {
		t.Fatalf("policy: %d %s", code, body)
	}
	vm := launch(t, alice, "decided-vm")
	for _, q := range []string{"", "?resource=" + vm, "?since=1h"} {
		if code, body := admin.get("/ui/admin/decisions" + q); code != http.StatusOK || !strings.Contains(body, vm) {
			t.Fatalf("decision log %q: %d %s", q, code, body)
		}
	}
	if code, body := admin.get("/ui/admin/decisions?resource=nope"); code != http.StatusOK || strings.Contains(body, vm) {
		t.Fatalf("decision log filtered on another resource: %d %s", code, body)
	}
	if code, _ := admin.get("/ui/admin/decisions?since=yesterday"); code != http.StatusBadRequest {
		t.Fatalf("a bad since: %d", code)
	}
}

func TestCosmosPolicy(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	admin := e.admin(t)
	module := "# pushed from the dashboard\n" + policy.Stock().Modules["placement.rego"]
	alice.get("/ui/")
	if code, _, _ := alice.post("/ui/admin/policy", url.Values{"module": {module}, "activate": {"1"}}); code != http.StatusForbidden {
		t.Fatalf("a member pushed a policy: %d", code)
	}
	admin.get("/ui/admin/policy")
	for _, tc := range []struct {
		name   string
		module string
		want   int
		text   string
	}{
		{name: "does not compile", module: "package cloudmux.placement\nallow if {", want: http.StatusBadRequest, text: `class="error"`},
		{name: "stock, changed", module: module, want: http.StatusOK, text: "It is now active."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := admin.post("/ui/admin/policy", url.Values{"name": {"placement.rego"}, "module": {tc.module},
				"comment": {"from the test"}, "activate": {"1"}})
			if code != tc.want || !strings.Contains(body, tc.text) {
				t.Fatalf("got %d %s", code, body)
			}
		})
	}
	active, err := policy.NewVersions(e.Store).Active(e.Ctx)
	if err != nil || active.Version == policy.StockVersion {
		t.Fatalf("active after the push: %+v %v", active, err)
	}
	if code, loc, body := admin.post("/ui/admin/policy/rollback", nil); code != http.StatusSeeOther || loc != "/ui/admin/policy" {
		t.Fatalf("rollback: %d %s", code, body)
	}
	if active, _ := policy.NewVersions(e.Store).Active(e.Ctx); active.Version != policy.StockVersion {
		t.Fatalf("after the rollback %s is active", active.Version)
	}
	if code, _, _ := admin.post("/ui/admin/policy/"+"nope"+"/activate", nil); code != http.StatusNotFound && code != http.StatusBadRequest {
		t.Fatalf("activating an unknown version: %d", code)
	}
}
