package ui_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// chromium finds Debian's chromium (scripts/install-chromium.sh): the
// browser tests skip without it, or fail under CLOUDMUX_REQUIRE_CHROMIUM=1
// (CI).
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("chromium")
	}
	if bin == "" {
		if os.Getenv("CLOUDMUX_REQUIRE_CHROMIUM") == "1" {
			t.Fatal("chromium is missing and CLOUDMUX_REQUIRE_CHROMIUM=1: run scripts/install-chromium.sh")
		}
		t.Skip("chromium is not installed (scripts/install-chromium.sh installs it; CHROMIUM_BIN names it; CLOUDMUX_REQUIRE_CHROMIUM=1 makes this a failure)")
	}
	return bin
}

// tab is one headless chromium tab, recording what its console and the
// CSP complain about.
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	shots    string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	tb := &tab{ctx: ctx, shots: os.Getenv("CLOUDMUX_UI_SCREENSHOTS")}
	if tb.shots == "" {
		tb.shots = t.TempDir()
	}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			tb.note("exception: " + ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				tb.note("console error: " + strings.Join(parts, " "))
			}
		case *cdplog.EventEntryAdded:
			// CSP violations and failed loads are logged here.
			if ev.Entry.Level == cdplog.LevelError {
				tb.note("log: " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		case *page.EventJavascriptDialogOpening:
			// hx-confirm's confirm(): accept, as a user would.
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(true)) }()
		}
	})
	if err := chromedp.Run(ctx, cdplog.Enable()); err != nil {
		t.Fatalf("chromium did not start: %v", err)
	}
	return tb
}

// clean fails the test if the pages logged an error (a CSP violation, a
// script error, a failed load) that was not expected.
func (tb *tab) clean(t *testing.T) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.problems) > 0 {
		t.Fatalf("the pages logged errors: %q", tb.problems)
	}
}

// forget drops the expected problems containing s.
func (tb *tab) forget(s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.problems = slices.DeleteFunc(tb.problems, func(p string) bool { return strings.Contains(p, s) })
}

func (tb *tab) note(s string) {
	tb.mu.Lock()
	tb.problems = append(tb.problems, s)
	tb.mu.Unlock()
}

// run runs actions and fails the test with a screenshot on error.
func (tb *tab) run(t *testing.T, step string, actions ...chromedp.Action) {
	t.Helper()
	// No step takes this long unless what it waits for never comes.
	ctx, cancel := context.WithTimeout(tb.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		tb.shot(t, "failed-"+step)
		t.Fatalf("%s: %v", step, err)
	}
	tb.shot(t, step)
}

func (tb *tab) shot(t *testing.T, name string) {
	var png []byte
	if err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		return
	}
	path := filepath.Join(tb.shots, strings.NewReplacer(" ", "-", "/", "-").Replace(t.Name()+"-"+name)+".png")
	if err := os.WriteFile(path, png, 0o644); err == nil {
		t.Logf("screenshot %s", path)
	}
}

func (tb *tab) login(t *testing.T, base, user, password string) {
	t.Helper()
	tb.run(t, "login",
		chromedp.Navigate(base+"/ui/login"),
		chromedp.WaitVisible("#username", chromedp.ByID),
		chromedp.SendKeys("#username", user, chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		chromedp.Click("#login", chromedp.ByID),
		chromedp.WaitVisible(`//h1[starts-with(., "Overview of")]`),
	)
}

// TestBrowserInstanceLifecycle drives the dashboards in headless
// chromium: log in, launch an instance and watch it go ACTIVE (htmx
// polling under the CSP), open "Why here?", delete it (hx-confirm), and
// see a tampered CSRF token refused.
func TestBrowserInstanceLifecycle(t *testing.T) {
	tb := newTab(t)
	e := newEnv(t)
	pw := e.Member(t, "alice", "proj-a", identity.RoleMember)
	base := e.Server.URL
	tb.login(t, base, "alice", pw)

	var status, why string
	tb.run(t, "launch",
		chromedp.Click(`//nav//a[.="Instances"]`),
		chromedp.WaitVisible("#launch", chromedp.ByID),
		chromedp.Click("#launch", chromedp.ByID),
		chromedp.WaitVisible("#launch-form", chromedp.ByID),
		// The placement preview, loaded by htmx from explain.
		chromedp.WaitVisible("#preview-verdicts", chromedp.ByID),
		chromedp.SendKeys("#name", "browser-vm", chromedp.ByID),
		chromedp.Click("#launch-submit", chromedp.ByID),
		chromedp.WaitVisible(`//dd[@id="status" and normalize-space(.)="ACTIVE"]`),
		chromedp.Text("#status", &status, chromedp.ByID),
		chromedp.Text("#why-here", &why, chromedp.ByID),
	)
	if !strings.Contains(why, "allowed") {
		t.Fatalf("Why here? shows no allowed peer: %q", why)
	}
	var console string
	tb.run(t, "console", chromedp.WaitVisible("#console", chromedp.ByID), chromedp.Text("#console", &console, chromedp.ByID))

	var list string
	tb.run(t, "list",
		chromedp.Navigate(base+"/ui/instances"),
		chromedp.WaitVisible("#instances", chromedp.ByID),
		chromedp.Text("#instances", &list, chromedp.ByID),
	)
	if !strings.Contains(list, "browser-vm") || !strings.Contains(list, "ACTIVE") {
		t.Fatalf("the list lacks the instance: %q", list)
	}

	var refused string
	tb.run(t, "csrf",
		chromedp.Click(`//a[.="browser-vm"]`),
		chromedp.WaitVisible("#action-stop", chromedp.ByID),
		// A forged form: the stop button's CSRF field tampered with.
		chromedp.SetAttributeValue(`//button[@id="action-stop"]/../input[@name="csrf"]`, "value", "forged"),
		chromedp.Click("#action-stop", chromedp.ByID),
		chromedp.WaitVisible(`//p[contains(., "CSRF")]`),
		chromedp.Text("main", &refused, chromedp.ByQuery),
	)
	if !strings.Contains(refused, "403") {
		t.Fatalf("a forged form was not refused: %q", refused)
	}
	tb.forget("status of 403") // the refusal, as the browser logs it

	tb.run(t, "delete",
		chromedp.Navigate(base+"/ui/instances"),
		chromedp.Click(`//a[.="browser-vm"]`),
		chromedp.WaitVisible("#delete", chromedp.ByID),
		chromedp.Click("#delete", chromedp.ByID),
		chromedp.WaitVisible(`//h1[.="Instances"]`),
		chromedp.Text("#instances", &list, chromedp.ByID),
	)
	if strings.Contains(list, "browser-vm") {
		t.Fatalf("the deleted instance is still listed: %q", list)
	}
	tb.clean(t)
}

// TestBrowserCosmos: an admin sees every peer on the federation map; a
// member gets 403 there.
func TestBrowserCosmos(t *testing.T) {
	tb := newTab(t)
	e := newEnv(t)
	pw := e.Member(t, "alice", "proj-a", identity.RoleMember)
	base := e.Server.URL
	tb.login(t, base, "alice", pw)
	var body string
	tb.run(t, "member-forbidden",
		chromedp.Navigate(base+"/ui/admin/federation"),
		chromedp.WaitVisible("main", chromedp.ByQuery),
		chromedp.Text("main", &body, chromedp.ByQuery),
	)
	if !strings.Contains(body, "403") || strings.Contains(body, "alpha") {
		t.Fatalf("a member reached the map: %q", body)
	}
	tb.forget("status of 403")
	tb.run(t, "logout", chromedp.Navigate(base+"/ui/"), chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login-form", chromedp.ByID))
	tb.login(t, base, "admin", brokertest.AdminPassword)
	var alpha string
	tb.run(t, "federation",
		chromedp.Navigate(base+"/ui/admin/federation"),
		chromedp.WaitVisible("#peer-alpha", chromedp.ByID),
		chromedp.WaitVisible("#peer-beta", chromedp.ByID),
		chromedp.Click("#maint-alpha", chromedp.ByID),
		chromedp.WaitVisible(`//article[@id="peer-alpha"]//p[@class="state" and starts-with(., "maintenance")]`),
		chromedp.Text("#peer-alpha", &alpha, chromedp.ByID),
	)
	if !strings.Contains(alpha, "Leave maintenance") {
		t.Fatalf("alpha after maintenance: %q", alpha)
	}
	tb.clean(t)
}

// TestBrowserDeploymentGraph: a deployment's page, opened while its
// server boots, redraws its graph from the SSE stream until every
// instance is READY.
func TestBrowserDeploymentGraph(t *testing.T) {
	tb := newTab(t)
	e := newEnvWith(t, 3*time.Second)
	pw := e.Member(t, "alice", "proj-a", identity.RoleMember)
	base := e.Server.URL
	tb.login(t, base, "alice", pw)
	d := e.deployAs(t, "alice", "shop")
	var settled string
	var ok bool
	tb.run(t, "open",
		chromedp.Navigate(base+"/ui/deployments/"+d.ID),
		chromedp.WaitVisible("#graph", chromedp.ByID),
		chromedp.AttributeValue("#deployment-status", "data-settled", &settled, &ok, chromedp.ByID),
	)
	if settled != "false" {
		t.Fatalf("the deployment had settled before its page opened (data-settled=%q): nothing live to watch", settled)
	}
	var status string
	tb.run(t, "settled",
		chromedp.WaitVisible(`//*[@id="graph"]//*[@data-key="web" and @data-status="READY"]`),
		chromedp.WaitVisible(`//p[@id="deployment-status" and @data-settled="true"]`),
		chromedp.Text("#deployment-status", &status, chromedp.ByID),
	)
	if !strings.Contains(status, "COMPLETE") {
		t.Fatalf("final status: %q", status)
	}
	tb.clean(t)
}
