package identity

import (
	"net/http/httptest"
	"testing"
)

// TestRulePathMatches holds the matcher to keystonemiddleware's: {name}
// and * are one segment of at least one character, ** anything (also
// nothing, also slashes), the rest literal (a dot is a dot).
func TestRulePathMatches(t *testing.T) {
	for _, c := range []struct {
		name, template, path string
		want                 bool
	}{
		{"literal", "/v2.1/servers", "/v2.1/servers", true},
		{"literal, not a prefix", "/v2.1/servers", "/v2.1/servers/x", false},
		{"dot is literal", "/v2.1/servers", "/v2x1/servers", false},
		{"star is one segment", "/v2.1/servers/*/ips", "/v2.1/servers/abc/ips", true},
		{"star spans no slash", "/v2.1/servers/*/ips", "/v2.1/servers/a/b/ips", false},
		{"star is not empty", "/v2.1/servers/*/ips", "/v2.1/servers//ips", false},
		{"tag is one segment", "/v2.1/servers/{server_id}/ips", "/v2.1/servers/abc/ips", true},
		{"tag spans no slash", "/v2.1/servers/{server_id}", "/v2.1/servers/a/b", false},
		{"double star spans", "/v2.1/servers/**", "/v2.1/servers/a/b/c", true},
		{"double star may be empty", "/v2.1/servers/**", "/v2.1/servers/", true},
		{"double star in the middle", "/v1/**/objects", "/v1/AUTH_p/c/objects", true},
		{"star inside a segment", "/v1/AUTH_*/*", "/v1/AUTH_abc/bucket", true},
		{"regexp metacharacters are literal", "/a+b/(c)", "/a+b/(c)", true},
		{"regexp metacharacters do not match", "/a+b", "/aab", false},
		{"three stars", "/x/***", "/x/a/b", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := rulePathMatches(c.template, c.path); got != c.want {
				t.Errorf("rulePathMatches(%q, %q) = %v, want %v", c.template, c.path, got, c.want)
			}
		})
	}
}

// TestServiceOf: a rule names a catalog service type and a path below
// where the broker mounts that service.
func TestServiceOf(t *testing.T) {
	for _, c := range []struct{ path, service, rel string }{
		{"/compute/v2.1/servers", "compute", "/v2.1/servers"},
		{"/volume/v3/p1/volumes", "volumev3", "/v3/p1/volumes"},
		{"/image/v2/images", "image", "/v2/images"},
		{"/network/v2.0/networks", "network", "/v2.0/networks"},
		{"/swift/v1/AUTH_p/c/o", "object-store", "/v1/AUTH_p/c/o"},
		{"/orchestration/v1/p/stacks", "orchestration", "/v1/p/stacks"},
		{"/v3/users/u/projects", "identity", "/v3/users/u/projects"},
		{"/v1/peers", "cloudmux", "/v1/peers"},
		{"/elsewhere/x", "", "/elsewhere/x"},
	} {
		t.Run(c.path, func(t *testing.T) {
			if s, rel := serviceOf(c.path); s != c.service || rel != c.rel {
				t.Errorf("serviceOf(%q) = %q, %q; want %q, %q", c.path, s, rel, c.service, c.rel)
			}
		})
	}
}

// TestCheckAccessRules: only a token from a credential with rules is
// checked; GET /v3/auth/tokens is always let through, as
// keystonemiddleware lets a token validate itself.
func TestCheckAccessRules(t *testing.T) {
	rules := []AccessRule{{Service: "compute", Method: "GET", Path: "/v2.1/servers"}}
	for _, c := range []struct {
		name, method, path string
		tok                Token
		ok                 bool
	}{
		{"password token", "DELETE", "/compute/v2.1/servers/x", Token{}, true},
		{"credential without rules", "DELETE", "/compute/v2.1/servers/x", Token{AppCred: &TokenAppCred{ID: "a"}}, true},
		{"the rule", "GET", "/compute/v2.1/servers", Token{AppCred: &TokenAppCred{ID: "a", AccessRules: rules}}, true},
		{"same path, another service", "GET", "/volume/v2.1/servers", Token{AppCred: &TokenAppCred{ID: "a", AccessRules: rules}}, false},
		{"another method", "POST", "/compute/v2.1/servers", Token{AppCred: &TokenAppCred{ID: "a", AccessRules: rules}}, false},
		{"validate itself", "GET", "/v3/auth/tokens", Token{AppCred: &TokenAppCred{ID: "a", AccessRules: rules}}, true},
		{"not revoke itself", "DELETE", "/v3/auth/tokens", Token{AppCred: &TokenAppCred{ID: "a", AccessRules: rules}}, false},
		{"an encoded slash", "GET", "/compute/v2.1/servers%2Fx", Token{AppCred: &TokenAppCred{ID: "a", AccessRules: []AccessRule{{Service: "compute", Method: "GET", Path: "/v2.1/**"}}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckAccessRules(c.tok, httptest.NewRequest(c.method, c.path, nil))
			if (err == nil) != c.ok {
				t.Errorf("CheckAccessRules = %v, want allowed %v", err, c.ok)
			}
		})
	}
}
