package ui_test

import (
	"bufio"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// webTemplate is a network, its subnet and a server on it; its hidden
// parameter lands in the server's metadata.
const webTemplate = `eve_template_version: 1
parameters:
  secret: {type: string, default: s3cret-value, hidden: true}
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: 10.50.0.0/24}}
  web:
    type: Server
    depends_on: [subnet]
    properties:
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      networks: [{network: {get_resource: net}}]
      metadata: {role: {get_param: secret}}
outputs:
  ip: {value: {get_attr: [web, first_address]}}
  secret: {value: {get_param: secret}}
`

// deployAs creates and starts a deployment of webTemplate in user's
// project, as POST /v1/deployments does.
func (e *env) deployAs(t *testing.T, user, name string) *deploy.Deployment {
	t.Helper()
	u, err := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, user)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := e.Dir.ProjectsOf(e.Ctx, u.ID)
	if err != nil || len(ps) == 0 {
		t.Fatalf("%s has no project: %v", user, err)
	}
	d, _, err := e.engine.Create(e.Ctx, name, resource.Caller{Project: ps[0].ID, User: u.ID}, deploy.Spec{Source: webTemplate})
	if err != nil {
		t.Fatal(err)
	}
	e.engine.Start(d.ID)
	return d
}

// follow reads the dashboard's event stream of a deployment until its
// end event and returns the last state fragment.
func (b *browser) follow(id string) string {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(b.e.Ctx, http.MethodGet, b.e.Server.URL+"/ui/deployments/"+id+"/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b.t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var event, last string
	var data []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		case line == "":
			if event == "state" {
				last = strings.Join(data, "\n")
			}
			if event == "end" {
				return last
			}
			event, data = "", nil
		}
	}
	b.t.Fatalf("the stream ended without an end event: %v", sc.Err())
	return ""
}

var nodeRe = regexp.MustCompile(`data-key="([^"]+)" data-status="([^"]+)"`)

func TestDeployments(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	bob := e.member(t, "bob", "proj-b")
	d := e.deployAs(t, "alice", "shop")

	final := alice.follow(d.ID)
	nodes := map[string]string{}
	for _, m := range nodeRe.FindAllStringSubmatch(final, -1) {
		nodes[m[1]] = m[2]
	}
	ready := 0
	for _, st := range nodes {
		if st == "READY" {
			ready++
		}
	}
	// The network and subnet are keyed by their peer (net@alpha).
	if len(nodes) != 3 || ready != 3 || nodes["web"] != "READY" {
		t.Fatalf("final graph: %v\n%s", nodes, final)
	}
	if !strings.Contains(final, "<line ") || !strings.Contains(final, "COMPLETE") {
		t.Fatalf("no edges or status in the final state: %s", final)
	}
	code, body := alice.get("/ui/deployments/" + d.ID)
	if code != http.StatusOK || !strings.Contains(body, `id="graph"`) || !strings.Contains(body, `id="events"`) {
		t.Fatalf("detail: %d %s", code, body)
	}
	if strings.Contains(body, "s3cret-value") || !strings.Contains(body, "******") {
		t.Fatalf("the hidden parameter shows: %s", body)
	}
	if inlineScript.MatchString(body) {
		t.Fatalf("inline script or style: %s", inlineScript.FindString(body))
	}
	if code, body := alice.get("/ui/deployments"); code != http.StatusOK || !strings.Contains(body, "shop") {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, tc := range []struct {
		name string
		do   func() (int, string)
	}{
		{name: "list", do: func() (int, string) { return bob.get("/ui/deployments") }},
		{name: "detail", do: func() (int, string) { return bob.get("/ui/deployments/" + d.ID) }},
		{name: "events", do: func() (int, string) { return bob.get("/ui/deployments/" + d.ID + "/events") }},
		{name: "delete", do: func() (int, string) {
			code, _, body := bob.post("/ui/deployments/"+d.ID+"/delete", nil)
			return code, body
		}},
	} {
		t.Run("bob "+tc.name, func(t *testing.T) {
			code, body := tc.do()
			if strings.Contains(body, "shop") || code != http.StatusOK && code != http.StatusNotFound || tc.name != "list" && code != http.StatusNotFound {
				t.Fatalf("got %d %s", code, body)
			}
		})
	}
	code, loc, body := alice.post("/ui/deployments/"+d.ID+"/delete", url.Values{})
	if code != http.StatusSeeOther || loc != "/ui/deployments/"+d.ID {
		t.Fatalf("delete: %d %s", code, body)
	}
	if final := alice.follow(d.ID); !strings.Contains(final, "DELETED") {
		t.Fatalf("after delete: %s", final)
	}
}

// TestDeploymentStreamEndsWithSession: a deployment's event stream,
// open on a deployment still pending, ends when its session does
// (logout), not when the deployment settles.
func TestDeploymentStreamEndsWithSession(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	u, err := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := e.Dir.ProjectsOf(e.Ctx, u.ID)
	if err != nil || len(ps) == 0 {
		t.Fatalf("alice has no project: %v", err)
	}
	// Created and never started: pending, so its stream stays open.
	d, _, err := e.engine.Create(e.Ctx, "idle", resource.Caller{Project: ps[0].ID, User: u.ID}, deploy.Spec{Source: webTemplate})
	if err != nil {
		t.Fatal(err)
	}
	sc := alice.openStream(d.ID)
	if code, _, _ := alice.post("/ui/logout", nil); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	// The server closes the stream: it ends (the test's own deadline
	// bounds the wait) without an end event.
	streamEnds(t, sc)
}

// TestDeploymentStreamEndsOnProjectSwitch: a stream authorized by the
// session's token for one project ends when the session switches to
// another project's token.
func TestDeploymentStreamEndsOnProjectSwitch(t *testing.T) {
	e := newEnv(t)
	pw := e.Member(t, "carol", "proj-c", identity.RoleMember)
	e.Member2(t, "carol", "proj-d")
	b := e.browser(t)
	b.login("carol", pw)
	u, err := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, "carol")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := e.Dir.ProjectsOf(e.Ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var projC, projD string
	for _, p := range ps {
		switch p.Name {
		case "proj-c":
			projC = p.ID
		case "proj-d":
			projD = p.ID
		}
	}
	if projC == "" || projD == "" {
		t.Fatalf("carol's projects: %+v", ps)
	}
	d, _, err := e.engine.Create(e.Ctx, "idle", resource.Caller{Project: projC, User: u.ID}, deploy.Spec{Source: webTemplate})
	if err != nil {
		t.Fatal(err)
	}
	sc := b.openStream(d.ID)
	if code, _, body := b.post("/ui/project", url.Values{"project": {projD}}); code != http.StatusSeeOther {
		t.Fatalf("switch: %d %s", code, body)
	}
	// The stream ends at its next check (within its 15 s keep-alive).
	streamEnds(t, sc)
}

// openStream opens a deployment's event stream and reads up to its first
// state event.
func (b *browser) openStream(id string) *bufio.Scanner {
	b.t.Helper()
	req, _ := http.NewRequestWithContext(b.e.Ctx, http.MethodGet, b.e.Server.URL+"/ui/deployments/"+id+"/events", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("stream: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && sc.Text() != "event: state" {
	}
	return sc
}

// streamEnds reads a stream to its end, which must come without an end
// event (the pending deployment never settles) and without an error.
func streamEnds(t *testing.T, sc *bufio.Scanner) {
	t.Helper()
	for sc.Scan() {
		if sc.Text() == "event: end" {
			t.Fatal("the stream said the pending deployment settled")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("the stream broke instead of ending: %v", err)
	}
}
