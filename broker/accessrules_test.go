package broker_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAccessRulesEveryAPI: a token from an application credential with
// access rules passes every front end's authentication (Nova, Cinder,
// Glance, Neutron, Swift, /v1) only for what a rule names, by the
// service's catalog type, method and path below the service's mount;
// everything else is 401 before the service sees it.
func TestAccessRulesEveryAPI(t *testing.T) {
	te := newTenancyEnv(t)
	tok, err := te.Keystone.Tokens.Validate(te.Ctx, te.aToken)
	if err != nil {
		t.Fatal(err)
	}
	rules := []map[string]string{
		{"service": "compute", "method": "GET", "path": "/v2.1/flavors"},
		{"service": "volumev3", "method": "GET", "path": "/v3/*/volumes"},
		{"service": "image", "method": "GET", "path": "/v2/images"},
		{"service": "network", "method": "GET", "path": "/v2.0/networks"},
		{"service": "object-store", "method": "GET", "path": "/v1/AUTH_*"},
		{"service": "cloudmux", "method": "GET", "path": "/v1/policies"},
	}
	raw, _ := json.Marshal(map[string]any{"application_credential": map[string]any{"name": "narrow", "access_rules": rules}})
	status, body := te.send(t, http.MethodPost, "/v3/users/"+tok.UserID+"/application_credentials", te.aToken, string(raw))
	if status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, body)
	}
	var cred struct {
		AppCred struct{ ID, Secret string } `json:"application_credential"`
	}
	_ = json.Unmarshal([]byte(body), &cred)
	raw, _ = json.Marshal(map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"application_credential"},
		"application_credential": map[string]string{"id": cred.AppCred.ID, "secret": cred.AppCred.Secret}}}})
	req, _ := http.NewRequestWithContext(te.Ctx, http.MethodPost, te.Server.URL+"/v3/auth/tokens", strings.NewReader(string(raw)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("login with the credential: %v %v", resp, err)
	}
	resp.Body.Close()
	narrow := resp.Header.Get("X-Subject-Token")
	p := te.aProject
	for _, c := range []struct {
		name, method, path string
		allowed            bool
	}{
		{"nova: the rule", "GET", "/compute/v2.1/flavors", true},
		{"nova: another path", "GET", "/compute/v2.1/servers", false},
		{"nova: another method", "POST", "/compute/v2.1/flavors", false},
		{"cinder: the rule", "GET", "/volume/v3/" + p + "/volumes", true},
		{"cinder: detail", "GET", "/volume/v3/" + p + "/volumes/detail", false},
		{"glance: the rule", "GET", "/image/v2/images", true},
		{"glance: one image", "GET", "/image/v2/images/x", false},
		{"neutron: the rule", "GET", "/network/v2.0/networks", true},
		{"neutron: subnets", "GET", "/network/v2.0/subnets", false},
		{"swift: the account", "GET", "/swift/v1/AUTH_" + p, true},
		{"swift: a container", "PUT", "/swift/v1/AUTH_" + p + "/c", false},
		{"v1: the rule", "GET", "/v1/policies", true},
		{"v1: decisions", "GET", "/v1/decisions", false},
		{"keystone: projects", "GET", "/v3/auth/projects", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := te.send(t, c.method, c.path, narrow, "")
			if (status != http.StatusUnauthorized) != c.allowed {
				t.Errorf("%s %s = %d %s; allowed %v", c.method, c.path, status, body, c.allowed)
			}
			// The same request with alice's password token is never 401:
			// the rules, not the request, refused it.
			if status, body := te.send(t, c.method, c.path, te.aToken, ""); status == http.StatusUnauthorized {
				t.Errorf("with a password token: %s %s = %d %s", c.method, c.path, status, body)
			}
		})
	}
}
