package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cloudmux/cloudmux/registry"
)

// Access rules narrow an application credential to named requests, as
// Keystone's: each is a service type, a method and a path template
// ("/v2.1/servers/*/ips", "/v2.1/servers/{server_id}", "/v1/**"). A
// token from a credential with rules may make only requests one of them
// matches; every other request is refused with 401, as keystonemiddleware
// refuses it.
//
// Rules belong to a user (identity/access-rules/<user>/<id>, served from
// the Cache's memory) and outlive the credentials that named them, so a
// later credential may reuse one by ID; a rule in use by a credential may
// not be deleted. A credential keeps a copy of its rules, and its tokens a
// copy of those: they never change, so a request is checked against its
// token alone.

const (
	accessRulesPrefix = "identity/access-rules/"
	// MaxAccessRulesPerCredential bounds one credential's rules.
	MaxAccessRulesPerCredential = 100
	// MaxAccessRulesPerUser bounds what a user keeps (rules outlive their
	// credentials until deleted).
	MaxAccessRulesPerUser = 1000
	// AccessRulesHeader is the header a validator sends to say it
	// enforces access rules (keystonemiddleware sends version 1.0);
	// Keystone will not show it a token from a credential with rules
	// otherwise.
	AccessRulesHeader = "OpenStack-Identity-Access-Rules"
	maxRulePath       = 225
)

// AccessRule is one rule: Keystone's service (a catalog service type),
// method and path template.
type AccessRule struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	// UserID owns the rule; not shown in the API, as Keystone's.
	UserID string `json:"user_id,omitempty"`
}

var (
	ruleMethods = []string{"DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"}
	// ruleService is Keystone's id_string.
	ruleService = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)
)

func accessRuleKey(userID, id string) string { return accessRulesPrefix + userID + "/" + id }

func accessRuleUserPrefix(userID string) string { return accessRulesPrefix + userID + "/" }

// same reports whether two rules name the same requests.
func (a AccessRule) same(b AccessRule) bool {
	return a.Service == b.Service && a.Method == b.Method && a.Path == b.Path
}

// validRuleKeyPart: IDs and user IDs name Store keys.
func validRuleKeyPart(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsAny(s, "/.") && registry.ValidateKey(accessRulesPrefix+s) == nil
}

// checkRule validates a rule given by service, method and path.
func checkRule(field string, r AccessRule) error {
	var errs []error
	if !ruleService.MatchString(r.Service) {
		errs = append(errs, &registry.FieldError{Field: field + ".service", Reason: "must be a service type (letters, digits, -; 1 to 64)"})
	}
	if !slices.Contains(ruleMethods, r.Method) {
		errs = append(errs, &registry.FieldError{Field: field + ".method", Reason: "must be one of " + strings.Join(ruleMethods, ", ")})
	}
	if !strings.HasPrefix(r.Path, "/") || len(r.Path) > maxRulePath {
		errs = append(errs, &registry.FieldError{Field: field + ".path", Reason: fmt.Sprintf("must start with / and be at most %d characters", maxRulePath)})
	}
	return errors.Join(errs...)
}

// AccessRulesOf returns a user's rules, by ID, from memory.
func (d *Directory) AccessRulesOf(ctx context.Context, userID string) ([]AccessRule, error) {
	if !validRuleKeyPart(userID) {
		return []AccessRule{}, nil
	}
	kvs, _, err := d.store.List(ctx, accessRuleUserPrefix(userID))
	if err != nil {
		return nil, err
	}
	out := make([]AccessRule, 0, len(kvs))
	for _, kv := range kvs {
		var r AccessRule
		if json.Unmarshal(kv.Value, &r) == nil && r.UserID == userID {
			out = append(out, r)
		}
	}
	return out, nil
}

// AccessRule returns one of a user's rules; another user's is not found.
func (d *Directory) AccessRule(ctx context.Context, userID, id string) (AccessRule, error) {
	if !validRuleKeyPart(userID) || !validRuleKeyPart(id) {
		return AccessRule{}, errNotFoundf("access rule %s", id)
	}
	r, err := getJSON[AccessRule](ctx, d.store, accessRuleKey(userID, id), "access rule", id)
	if err == nil && r.UserID != userID {
		return AccessRule{}, errNotFoundf("access rule %s", id)
	}
	return r, err
}

// resolveAccessRules turns a credential's requested rules into stored
// rules of its user: one named by ID must be the user's; one given by
// service, method and path reuses the user's identical rule, or is made.
// Rules made here are written before the credential; a credential that
// fails to be stored leaves them, as Keystone's, for the user to reuse or
// delete.
func (c *AppCredentials) resolveAccessRules(ctx context.Context, userID string, want []AccessRule) ([]AccessRule, error) {
	if len(want) == 0 {
		return nil, nil
	}
	if len(want) > MaxAccessRulesPerCredential {
		return nil, &registry.FieldError{Field: "application_credential.access_rules", Reason: fmt.Sprintf("at most %d rules", MaxAccessRulesPerCredential)}
	}
	held, err := c.dir.AccessRulesOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out, fresh []AccessRule
	var errs []error
	for i, w := range want {
		field := fmt.Sprintf("application_credential.access_rules[%d]", i)
		if w.ID != "" {
			j := slices.IndexFunc(held, func(h AccessRule) bool { return h.ID == w.ID })
			switch {
			case j < 0:
				errs = append(errs, &registry.FieldError{Field: field + ".id", Reason: fmt.Sprintf("no access rule %q of this user", w.ID)})
			case (w.Service != "" || w.Method != "" || w.Path != "") && !held[j].same(w):
				errs = append(errs, &registry.FieldError{Field: field, Reason: "give an existing rule's id alone, or service, method and path"})
			default:
				out = append(out, held[j])
			}
			continue
		}
		if err := checkRule(field, w); err != nil {
			errs = append(errs, err)
			continue
		}
		if j := slices.IndexFunc(held, w.same); j >= 0 {
			out = append(out, held[j])
			continue
		}
		r := AccessRule{ID: NewID(), Service: w.Service, Method: w.Method, Path: w.Path, UserID: userID}
		held, fresh, out = append(held, r), append(fresh, r), append(out, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(held) > MaxAccessRulesPerUser {
		return nil, fmt.Errorf("%w: a user may keep at most %d access rules; delete unused ones", ErrForbidden, MaxAccessRulesPerUser)
	}
	for _, r := range fresh {
		if err := c.dir.putAccessRule(ctx, r); err != nil {
			return nil, err
		}
	}
	// Two rules of one request that name the same rule are one.
	out = slices.CompactFunc(out, func(a, b AccessRule) bool { return a.ID == b.ID })
	return out, nil
}

func (d *Directory) putAccessRule(ctx context.Context, r AccessRule) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := d.store.Put(ctx, accessRuleKey(r.UserID, r.ID), raw); err != nil {
		return fmt.Errorf("store access rule: %w", err)
	}
	return nil
}

// keepAccessRules writes back any of a new credential's rules a racing
// delete removed after checking they were unused: a rule in use always
// exists.
func (c *AppCredentials) keepAccessRules(ctx context.Context, rules []AccessRule) error {
	for _, r := range rules {
		_, err := c.dir.store.Get(ReadStore(ctx), accessRuleKey(r.UserID, r.ID))
		if errors.Is(err, registry.ErrNotFound) {
			err = c.dir.putAccessRule(ctx, r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errRuleInUse is Keystone's answer to deleting a rule a credential uses.
var errRuleInUse = fmt.Errorf("%w: May not delete access rule in use", ErrForbidden)

// DeleteAccessRule deletes one of a user's rules that no credential of
// theirs uses. A credential created meanwhile either is seen by the check
// after the delete (which puts the rule back) or puts it back itself
// (keepAccessRules).
func (c *AppCredentials) DeleteAccessRule(ctx context.Context, userID, id string) error {
	r, err := c.dir.AccessRule(ctx, userID, id)
	if err != nil {
		return err
	}
	if used, err := c.ruleInUse(ctx, userID, id); err != nil || used {
		return errors.Join(err, ifTrue(used, errRuleInUse))
	}
	if err := c.dir.store.Delete(ctx, accessRuleKey(userID, id)); err != nil {
		return alreadyGone(err)
	}
	if used, err := c.ruleInUse(ctx, userID, id); err != nil || used {
		return errors.Join(err, c.dir.putAccessRule(context.WithoutCancel(ctx), r), ifTrue(used, errRuleInUse))
	}
	return nil
}

func ifTrue(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// ruleInUse reports whether a credential of the user names the rule (read
// from the Store: a credential just made on another replica counts).
func (c *AppCredentials) ruleInUse(ctx context.Context, userID, id string) (bool, error) {
	acs, err := c.List(ReadStore(ctx), userID)
	if err != nil {
		return false, err
	}
	for _, ac := range acs {
		if slices.ContainsFunc(ac.AccessRules, func(r AccessRule) bool { return r.ID == id }) {
			return true, nil
		}
	}
	return false, nil
}

// deleteAccessRulesOf removes every rule of a user (the user is gone).
func (d *Directory) deleteAccessRulesOf(ctx context.Context, userID string) error {
	rules, err := d.AccessRulesOf(ReadStore(ctx), userID)
	var errs []error
	errs = append(errs, err)
	for _, r := range rules {
		errs = append(errs, alreadyGone(d.store.Delete(ctx, accessRuleKey(userID, r.ID))))
	}
	return errors.Join(errs...)
}

// ruleMounts maps the first path segment of each broker service to its
// catalog type; a rule's path is the request's below that mount, as a
// service's own path is below where it is deployed (Keystone's example
// "/v2.1/servers" for Nova at /compute/v2.1). Services mounted at their
// version (/v3, /v1) keep it.
var ruleMounts = func() map[string]string {
	m := map[string]string{}
	for _, s := range DefaultServices {
		seg, _, _ := strings.Cut(strings.TrimPrefix(s.Path, "/"), "/")
		m["/"+seg] = s.Type
	}
	return m
}()

// serviceOf returns the catalog type of the service a request path
// reaches and the path a rule is matched against.
func serviceOf(path string) (service, rel string) {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	service, ok := ruleMounts["/"+seg]
	if !ok {
		return "", path
	}
	if isVersion(seg) {
		return service, path
	}
	return service, strings.TrimPrefix(path, "/"+seg)
}

func isVersion(seg string) bool {
	return len(seg) > 1 && seg[0] == 'v' && seg[1] >= '0' && seg[1] <= '9'
}

// errRuleDenied is keystonemiddleware's answer to a request no rule
// allows: its 401, whose message names no rule.
var errRuleDenied = ErrUnauthorized

// CheckAccessRules returns nil when t may make r: t is not from a
// credential with access rules, or one of them matches r's service,
// method and path. Like keystonemiddleware, a token from such a
// credential may always validate itself (GET /v3/auth/tokens).
func CheckAccessRules(t Token, r *http.Request) error {
	if t.AppCred == nil || len(t.AppCred.AccessRules) == 0 {
		return nil
	}
	// A rule matches the decoded path, as keystonemiddleware's; chi
	// routes an encoded slash as part of a segment, so a path holding
	// one could match a rule and reach another route: refused.
	if strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
		return errRuleDenied
	}
	service, path := serviceOf(r.URL.Path)
	if service == "identity" && r.Method == http.MethodGet && strings.HasSuffix(path, "/v3/auth/tokens") {
		return nil
	}
	for _, rule := range t.AppCred.AccessRules {
		if rule.Method == r.Method && rule.Service == service && service != "" && rulePathMatches(rule.Path, path) {
			return nil
		}
	}
	return errRuleDenied
}

// rulePatterns caches compiled path templates (rules are few and
// immutable); it is cleared when it grows past a bound.
var rulePatterns = struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}{m: map[string]*regexp.Regexp{}}

// rulePathMatches matches a path against a template as keystonemiddleware
// does: "{name}" and "*" stand for one path segment (at least one
// character, no slash), "**" for anything (slashes too, or nothing);
// everything else is literal.
func rulePathMatches(template, path string) bool {
	rulePatterns.Lock()
	re, ok := rulePatterns.m[template]
	rulePatterns.Unlock()
	if !ok {
		var b strings.Builder
		b.WriteString("^")
		lit := 0 // start of the literal run
		for i := 0; i < len(template); i++ {
			var token string
			next := i
			switch {
			case strings.HasPrefix(template[i:], "**"):
				token, next = ".*", i+1
			case template[i] == '*':
				token = "[^/]+"
			case template[i] == '{' && strings.IndexByte(template[i:], '}') > 0:
				token, next = "[^/]+", i+strings.IndexByte(template[i:], '}')
			default:
				continue
			}
			b.WriteString(regexp.QuoteMeta(template[lit:i]) + token)
			i, lit = next, next+1
		}
		b.WriteString(regexp.QuoteMeta(template[lit:]) + "$")
		var err error
		if re, err = regexp.Compile(b.String()); err != nil {
			return false
		}
		rulePatterns.Lock()
		if len(rulePatterns.m) > 10_000 {
			clear(rulePatterns.m)
		}
		rulePatterns.m[template] = re
		rulePatterns.Unlock()
	}
	return re.MatchString(path)
}

// accessRuleView is a rule as Keystone shows it.
func accessRuleView(r *http.Request, userID string, rule AccessRule) map[string]any {
	return map[string]any{"id": rule.ID, "service": rule.Service, "method": rule.Method, "path": rule.Path,
		"links": map[string]string{"self": BaseURL(r) + "/v3/users/" + userID + "/access_rules/" + rule.ID}}
}

// enforcesAccessRules reports whether a validator sent AccessRulesHeader
// with version 1.0 or later.
func enforcesAccessRules(r *http.Request) bool {
	v, err := strconv.ParseFloat(r.Header.Get(AccessRulesHeader), 64)
	return err == nil && v >= 1.0
}
