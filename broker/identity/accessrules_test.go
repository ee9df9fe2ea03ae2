package identity_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestAccessRules drives application credentials with access rules and
// /v3/users/{id}/access_rules with gophercloud, as the rules' owner, as
// another member and as the cloud admin, and checks that a token from
// such a credential reaches only what its rules name.
func TestAccessRules(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	listProjects := applicationcredentials.AccessRule{Service: "identity", Method: "GET", Path: "/v3/users/*/projects"}
	showAny := applicationcredentials.AccessRule{Service: "identity", Method: "GET", Path: "/v3/projects/**"}
	cred := create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "narrow", AccessRules: []applicationcredentials.AccessRule{listProjects, showAny}})
	if len(cred.AccessRules) != 2 || cred.AccessRules[0].ID == "" || cred.AccessRules[0].Path != listProjects.Path || cred.AccessRules[1].Service != "identity" {
		t.Fatalf("created with rules %+v", cred.AccessRules)
	}
	ruleIDs := []string{cred.AccessRules[0].ID, cred.AccessRules[1].ID}

	t.Run("rules are the user's and reused", func(t *testing.T) {
		again := create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "again",
			AccessRules: []applicationcredentials.AccessRule{{ID: ruleIDs[0]}, showAny}})
		if got := []string{again.AccessRules[0].ID, again.AccessRules[1].ID}; !slices.Equal(got, ruleIDs) {
			t.Errorf("rules by id and by value = %v, want the existing %v", got, ruleIDs)
		}
		pages, err := applicationcredentials.ListAccessRules(e.aliceC, e.alice.ID).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rules, err := applicationcredentials.ExtractAccessRules(pages)
		if err != nil || len(rules) != 2 {
			t.Fatalf("alice's rules = %+v, %v", rules, err)
		}
		got, err := applicationcredentials.GetAccessRule(ctx, e.adminC, e.alice.ID, ruleIDs[1]).Extract()
		if err != nil || got.Path != showAny.Path || got.Method != "GET" {
			t.Errorf("admin shows alice's rule: %+v, %v", got, err)
		}
		if err := applicationcredentials.Delete(ctx, e.aliceC, e.alice.ID, again.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		base := "/v3/users/" + e.alice.ID + "/application_credentials"
		for _, c := range []struct {
			name  string
			rule  map[string]any
			field string
		}{
			{"no such method", map[string]any{"service": "compute", "method": "FETCH", "path": "/v2.1/servers"}, "application_credential.access_rules[0].method"},
			{"relative path", map[string]any{"service": "compute", "method": "GET", "path": "v2.1/servers"}, "application_credential.access_rules[0].path"},
			{"no service", map[string]any{"method": "GET", "path": "/v2.1/servers"}, "application_credential.access_rules[0].service"},
			{"another user's rule", map[string]any{"id": "0123456789abcdef0123456789abcdef"}, "application_credential.access_rules[0].id"},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, body := e.call(t, http.MethodPost, base, e.aliceC.Token(), map[string]any{"application_credential": map[string]any{
					"name": "bad-" + c.name, "access_rules": []any{c.rule}}})
				if code != http.StatusBadRequest || !slices.Contains(errorFields(body), c.field) {
					t.Errorf("= %d %v, want 400 on %s", code, body, c.field)
				}
			})
		}
		// mallory may not name alice's rule either.
		code, body := e.call(t, http.MethodPost, "/v3/users/"+e.mallory.ID+"/application_credentials", e.malC.Token(),
			map[string]any{"application_credential": map[string]any{"name": "stolen", "access_rules": []any{map[string]any{"id": ruleIDs[0]}}}})
		if code != http.StatusBadRequest {
			t.Errorf("mallory names alice's rule: %d %v", code, body)
		}
	})

	t.Run("another member", func(t *testing.T) {
		for _, c := range []struct {
			name, method, path string
			want               int
		}{
			{"lists", http.MethodGet, "/v3/users/" + e.alice.ID + "/access_rules", http.StatusForbidden},
			{"shows", http.MethodGet, "/v3/users/" + e.alice.ID + "/access_rules/" + ruleIDs[0], http.StatusForbidden},
			{"deletes", http.MethodDelete, "/v3/users/" + e.alice.ID + "/access_rules/" + ruleIDs[0], http.StatusForbidden},
			{"names it under their own user", http.MethodGet, "/v3/users/" + e.mallory.ID + "/access_rules/" + ruleIDs[0], http.StatusNotFound},
			{"deletes it under their own user", http.MethodDelete, "/v3/users/" + e.mallory.ID + "/access_rules/" + ruleIDs[0], http.StatusNotFound},
			{"lists their own", http.MethodGet, "/v3/users/" + e.mallory.ID + "/access_rules", http.StatusOK},
		} {
			t.Run(c.name, func(t *testing.T) {
				if code, body := e.call(t, c.method, c.path, e.malC.Token(), nil); code != c.want {
					t.Errorf("%s %s = %d %v, want %d", c.method, c.path, code, body, c.want)
				}
			})
		}
	})

	t.Run("a token reaches what the rules name", func(t *testing.T) {
		c, token := e.appClient(t, cred.ID, cred.Secret)
		for _, x := range []struct {
			name, method, path string
			want               int
		}{
			{"listed: the user's projects", http.MethodGet, "/v3/users/" + e.alice.ID + "/projects", http.StatusOK},
			// Past the rules, the policy still decides: a member does not
			// read tags (403, not 401).
			{"** spans segments", http.MethodGet, "/v3/projects/" + e.proj.ID + "/tags", http.StatusForbidden},
			{"** matches one", http.MethodGet, "/v3/projects/" + e.proj.ID, http.StatusOK},
			{"another method", http.MethodDelete, "/v3/projects/" + e.proj.ID, http.StatusUnauthorized},
			{"another path", http.MethodGet, "/v3/users/" + e.alice.ID + "/groups", http.StatusUnauthorized},
			{"not even its own credentials", http.MethodGet, "/v3/users/" + e.alice.ID + "/application_credentials", http.StatusUnauthorized},
			{"nor access rules", http.MethodGet, "/v3/users/" + e.alice.ID + "/access_rules", http.StatusUnauthorized},
		} {
			t.Run(x.name, func(t *testing.T) {
				code, body := e.call(t, x.method, x.path, token, nil)
				if code != x.want {
					t.Fatalf("%s %s = %d %v, want %d", x.method, x.path, code, body, x.want)
				}
				if code == http.StatusUnauthorized {
					if msg, _ := body["error"].(map[string]any)["message"].(string); !strings.EqualFold(msg, "the request you have made requires authentication") {
						t.Errorf("401 says %q, not keystonemiddleware's words", msg)
					}
				}
			})
		}
		if _, err := projects.ListAvailable(c).AllPages(ctx); err == nil {
			t.Error("gophercloud's /v3/auth/projects passed no rule")
		}
		// The token body shows the rules; a validator that does not say it
		// enforces them is not shown the token, as Keystone's.
		var v struct {
			AppCred struct {
				AccessRules []applicationcredentials.AccessRule `json:"access_rules"`
			} `json:"application_credential"`
		}
		admin := *e.adminC
		admin.MoreHeaders = map[string]string{"OpenStack-Identity-Access-Rules": "1.0"}
		if err := tokens.Get(ctx, &admin, token).ExtractInto(&v); err != nil || len(v.AppCred.AccessRules) != 2 || v.AppCred.AccessRules[0].ID != ruleIDs[0] {
			t.Errorf("token body rules = %+v, %v", v.AppCred.AccessRules, err)
		}
		if err := tokens.Get(ctx, e.adminC, token).Err; !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("validated without the access rules header: %v, want 404", err)
		}
		// keystonemiddleware lets such a token validate itself.
		self := *c
		self.MoreHeaders = map[string]string{"OpenStack-Identity-Access-Rules": "1.0"}
		if err := tokens.Get(ctx, &self, token).Err; err != nil {
			t.Errorf("the token validates itself: %v", err)
		}
	})

	t.Run("a rule in use is kept", func(t *testing.T) {
		err := applicationcredentials.DeleteAccessRule(ctx, e.aliceC, e.alice.ID, ruleIDs[0]).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("delete a rule in use: %v, want 403", err)
		}
		if err := applicationcredentials.Delete(ctx, e.aliceC, e.alice.ID, cred.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		// Unused now: alice deletes one, the admin the other.
		if err := applicationcredentials.DeleteAccessRule(ctx, e.aliceC, e.alice.ID, ruleIDs[0]).ExtractErr(); err != nil {
			t.Fatalf("alice deletes her unused rule: %v", err)
		}
		if err := applicationcredentials.DeleteAccessRule(ctx, e.adminC, e.alice.ID, ruleIDs[1]).ExtractErr(); err != nil {
			t.Fatalf("the admin deletes alice's unused rule: %v", err)
		}
		_, err = applicationcredentials.GetAccessRule(ctx, e.aliceC, e.alice.ID, ruleIDs[0]).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("deleted rule: %v, want 404", err)
		}
	})

	t.Run("a deleted user's rules go", func(t *testing.T) {
		leaveRule := func(c *gophercloud.ServiceClient, userID string) {
			t.Helper()
			ac := create(t, c, userID, applicationcredentials.CreateOpts{Name: "m", AccessRules: []applicationcredentials.AccessRule{listProjects}})
			if err := applicationcredentials.Delete(ctx, c, userID, ac.ID).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
		rulesOf := func(userID string) int {
			t.Helper()
			rules, err := e.dir.AccessRulesOf(ctx, userID)
			if err != nil {
				t.Fatal(err)
			}
			return len(rules)
		}
		// Through the API: deleting the user deletes them.
		leaveRule(e.malC, e.mallory.ID)
		if code, body := e.call(t, http.MethodDelete, "/v3/users/"+e.mallory.ID, e.adminC.Token(), nil); code != http.StatusNoContent {
			t.Fatalf("delete mallory = %d %v", code, body)
		}
		if n := rulesOf(e.mallory.ID); n != 0 {
			t.Errorf("mallory deleted, %d rules left", n)
		}
		// A user deleted otherwise: the collector finds the rules.
		aliceC := e.client(t, "alice", "alice-password", "team-a")
		leaveRule(aliceC, e.alice.ID)
		if err := e.dir.DeleteUser(ctx, e.alice.ID); err != nil {
			t.Fatal(err)
		}
		gc := identity.DeletedUsersCredentials{EC2: identity.NewEC2Credentials(e.dir), Tokens: e.tokens}
		if n, err := gc.Collect(ctx, time.Now()); err != nil || n != 1 {
			t.Fatalf("collected %d users' leftovers, %v", n, err)
		}
		if n := rulesOf(e.alice.ID); n != 0 {
			t.Errorf("alice deleted and collected, %d rules left", n)
		}
	})
}
