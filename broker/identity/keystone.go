package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// keystoneTime is Keystone's timestamp format, which gophercloud parses.
const keystoneTime = "2006-01-02T15:04:05.000000Z"

// Keystone serves the Keystone v3 API subset cloudmux offers.
type Keystone struct {
	Dir     *Directory
	Tokens  *Tokens
	Catalog func(baseURL string) []Service
	Log     logrus.FieldLogger
	TTL     time.Duration
	// EC2 holds the OS-EC2 credentials; nil keeps them unsealed in the
	// store. Set it (sealed) to the same instance the EC2 API checks
	// signatures with.
	EC2 *EC2Credentials
	// Throttle limits failed password logins per user name, per replica.
	Throttle LoginThrottle
	// Limits, when set, serves unified limits (/v3/registered_limits,
	// /v3/limits) over the quota ledger's limits.
	Limits QuotaLimits

	throttle throttle
}

// Service is one catalog entry.
type Service struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	Name      string     `json:"name"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one URL of a service.
type Endpoint struct {
	ID        string `json:"id"`
	Interface string `json:"interface"`
	Region    string `json:"region"`
	RegionID  string `json:"region_id"`
	URL       string `json:"url"`
}

// BaseURL is the scheme and host a request reached the broker at; catalog
// URLs use it so a client is sent back where it came from.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Routes mounts /v3 on r.
func (k *Keystone) Routes(r chi.Router) {
	r.Get("/", k.version)
	r.Post("/users/{user}/password", k.changePassword)
	r.Route("/auth", func(r chi.Router) {
		r.Post("/tokens", k.issue)
		r.Group(func(r chi.Router) {
			r.Use(k.Authenticate)
			r.Get("/tokens", k.validate)
			r.Head("/tokens", k.validate)
			r.Delete("/tokens", k.revoke)
			r.Get("/catalog", k.catalog)
			r.Get("/projects", k.myProjects)
			r.Get("/domains", k.myDomains)
		})
	})
	r.Group(func(r chi.Router) {
		r.Use(k.Authenticate)
		r.Get("/users/{user}/projects", k.userProjects)
		r.Get("/users/{user}/groups", k.userGroups)
		r.Get("/users/{id}", k.showUser)
		r.Route("/projects", k.projectRoutes)
		// Keystone keeps tokens from application credentials away from
		// the EC2 keys: keys act with the user's full roles.
		r.With(refuseAppCredTokens("EC2 credentials")).Route("/users/{user}/credentials/OS-EC2", k.ec2CredentialRoutes)
		r.Route("/users/{user}/application_credentials", k.appCredentialRoutes)
		r.Route("/users/{user}/access_rules", k.accessRuleRoutes)
		k.catalogRoutes(r)
		r.Route("/OS-TRUST/trusts", k.trustRoutes)
		r.Route("/credentials", k.credentialRoutes)
		if k.Limits != nil {
			k.limitRoutes(r)
		}
		r.Group(func(r chi.Router) {
			r.Use(k.adminGate) // identity admins, and domain admins in their domain
			r.Route("/domains", k.domainRoutes)
			r.Get("/users", k.listUsers)
			r.Post("/users", k.createUser)
			r.Patch("/users/{id}", k.updateUser)
			r.Delete("/users/{id}", k.deleteUser)
			r.Route("/groups", k.groupRoutes)
			r.Route("/roles", k.roleRoutes)
			r.Get("/role_inferences", k.listRoleInferences)
			r.Get("/role_assignments", k.listAssignments)
			k.assignmentRoutes(r)
		})
	})
}

// Versions answers GET / with the identity versions, as Keystone's root
// does (clients given an unversioned auth_url discover /v3 here).
func (k *Keystone) Versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{k.versionDoc(r)}}})
}

func (k *Keystone) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": k.versionDoc(r)})
}

func (k *Keystone) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]string{{"rel": "self", "href": BaseURL(r) + "/v3/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

// ctxKey types the context keys of this package.
type ctxKey int

const tokenKey ctxKey = 0

// TokenFrom returns the validated token of a request.
func TokenFrom(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(tokenKey).(Token)
	return t, ok
}

// AuthToken reads the caller's token: X-Auth-Token, or a bearer token.
func AuthToken(r *http.Request) string {
	if t := r.Header.Get("X-Auth-Token"); t != "" {
		return t
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// Authenticate requires a valid token and puts it in the context. A token
// from an application credential with access rules passes only requests
// one of its rules allows (every API of the broker authenticates here,
// Swift through CheckAccessRules).
func (k *Keystone) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := k.Tokens.Validate(r.Context(), AuthToken(r))
		if err == nil {
			err = CheckAccessRules(t, r)
		}
		if err != nil {
			k.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey, t)))
	})
}

// RequireCloudAdmin answers 403 unless the token is a cloud admin's (the
// admin role on the admin project).
func RequireCloudAdmin(next http.Handler) http.Handler {
	return requireToken(Token.CloudAdmin, "this needs the admin role on the "+AdminProjectName+" project", next)
}

// requireIdentityAdmin answers 403 unless the token may manage the
// identity service (Token.IdentityAdmin).
func requireIdentityAdmin(next http.Handler) http.Handler {
	return requireToken(Token.IdentityAdmin, "this needs the admin role on the "+AdminProjectName+" project or the system", next)
}

// requireToken answers 403 with why unless ok holds of the caller's token.
func requireToken(ok func(Token) bool, why string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := TokenFrom(r.Context()); !ok(t) {
			WriteError(w, r, fmt.Errorf("%w: %s", ErrForbidden, why))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireRole answers 403 unless the token holds role on its project
// (admin implies member implies reader).
func RequireRole(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, _ := TokenFrom(r.Context()); !t.HasRole(role) {
				WriteError(w, r, fmt.Errorf("%w: this needs the %s role", ErrForbidden, role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type nameOrID struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Domain *nameOrID `json:"domain"`
}

type authRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					nameOrID
					Password string `json:"password"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
			ApplicationCredential *appCredAuth `json:"application_credential"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

func (k *Keystone) issue(w http.ResponseWriter, r *http.Request) {
	var req authRequest
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	// What the token will carry is read from the Store, not this
	// replica's memory, which may lag behind a revocation (ReadStore).
	ctx := ReadStore(r.Context())
	id := req.Auth.Identity
	var user User
	var methods []string
	var rescopeUntil time.Time
	var appCred *AppCredential
	switch {
	case slices.Contains(id.Methods, "password") && id.Password != nil:
		u, err := k.findUser(ctx, id.Password.User.nameOrID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			k.fail(w, r, err)
			return
		}
		key, now := loginKey(id.Password.User.nameOrID, u), time.Now()
		if until, no := k.throttled(key, now); no {
			w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Seconds())+1))
			k.fail(w, r, fmt.Errorf("%w: too many failed logins of this user; try again later", ErrThrottled))
			return
		}
		if user, err = k.Dir.CheckPassword(ctx, u, id.Password.User.Password); err != nil {
			if errors.Is(err, ErrUnauthorized) {
				k.loginFailed(key, now)
			}
			k.fail(w, r, err)
			return
		}
		methods = []string{"password"}
	case slices.Contains(id.Methods, "token") && id.Token != nil:
		prev, err := k.Tokens.Validate(ctx, id.Token.ID)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		// Keystone: a token from an application credential is as narrow
		// as the credential; it does not beget tokens of other scopes.
		if prev.AppCred != nil || prev.Trust != nil {
			k.fail(w, r, fmt.Errorf("%w: using a delegated token to create another token is not allowed", ErrForbidden))
			return
		}
		// A token begets tokens that die with it: rescoping never extends
		// a lifetime, or a stolen token would live forever.
		// An instant, not a duration: the new token's clock starts later.
		rescopeUntil = prev.ExpiresAt
		if user, err = k.Dir.GetUser(ctx, prev.UserID); err != nil || !user.Enabled || !k.domainEnabled(ctx, user.DomainID) {
			k.fail(w, r, fmt.Errorf("%w: the token's user is gone or disabled", ErrUnauthorized))
			return
		}
		methods = []string{"token"}
	case slices.Contains(id.Methods, MethodAppCred) && id.ApplicationCredential != nil:
		u, ac, err := k.appCredLogin(ctx, *id.ApplicationCredential)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		user, appCred, methods = u, &ac, []string{MethodAppCred}
	default:
		k.fail(w, r, &registry.FieldError{Field: "auth.identity.methods", Reason: "supported methods are password, token and application_credential, with their sections"})
		return
	}
	t := Token{UserID: user.ID, UserName: user.Name, UserDomainID: user.DomainID, Methods: methods, PasswordExpiresAt: user.PasswordExpiresAt}
	if dom, err := k.Dir.GetDomain(ctx, user.DomainID); err == nil {
		t.UserDomainName = dom.Name
	}
	scope := func() error { return k.scope(ctx, &t, req.Auth.Scope, user) }
	if appCred != nil {
		scope = func() error { return k.appCredScope(ctx, &t, req.Auth.Scope, *appCred) }
	}
	if err := scope(); err != nil {
		k.fail(w, r, err)
		return
	}
	ttl := k.TTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	if !rescopeUntil.IsZero() && (t.ExpiresAt.IsZero() || rescopeUntil.Before(t.ExpiresAt)) {
		t.ExpiresAt = rescopeUntil // Issue keeps the earlier of this and now+ttl
	}
	token, t, err := k.Tokens.Issue(ctx, t, ttl)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	w.Header().Set("X-Subject-Token", token)
	k.Log.WithFields(logrus.Fields{"user": t.UserName, "project": t.ProjectName, "audit_id": t.AuditID}).Info("token issued")
	writeJSON(w, http.StatusCreated, map[string]any{"token": k.tokenBody(r, t, r.URL.Query().Has("nocatalog"))})
}

func (k *Keystone) findUser(ctx context.Context, u nameOrID) (User, error) {
	if u.ID != "" {
		return k.Dir.GetUser(ctx, u.ID)
	}
	domainID, err := k.domainID(ctx, u.Domain)
	if err != nil {
		return User{}, err
	}
	return k.Dir.FindUser(ctx, domainID, u.Name)
}

func (k *Keystone) domainID(ctx context.Context, d *nameOrID) (string, error) {
	switch {
	case d == nil:
		return DefaultDomainID, nil
	case d.ID != "":
		return d.ID, nil
	default:
		dom, err := k.Dir.FindDomain(ctx, d.Name)
		return dom.ID, err
	}
}

// scope resolves the requested scope (a project by id, or by name and
// domain; a domain; the system; "unscoped"; or none, which uses the user's
// default project when it has a role there) and fills the token's scope
// and roles.
func (k *Keystone) scope(ctx context.Context, t *Token, raw json.RawMessage, user User) error {
	var want *nameOrID
	switch s := strings.TrimSpace(string(raw)); {
	case s == "" || s == "null":
		if user.DefaultProjectID != "" {
			want = &nameOrID{ID: user.DefaultProjectID}
		}
	case s == `"unscoped"`:
	default:
		var sc struct {
			Project *nameOrID `json:"project"`
			Trust   *struct {
				ID string `json:"id"`
			} `json:"OS-TRUST:trust"`
			Domain *nameOrID `json:"domain"`
			System *struct {
				All bool `json:"all"`
			} `json:"system"`
		}
		if err := json.Unmarshal(raw, &sc); err != nil {
			return &registry.FieldError{Field: "auth.scope", Reason: "must be an object naming a project, a domain or the system, or \"unscoped\""}
		}
		switch {
		case sc.Trust != nil:
			return k.scopeTrust(ctx, t, sc.Trust.ID, user)
		case sc.Project != nil:
			want = sc.Project
		case sc.Domain != nil:
			return k.scopeDomain(ctx, t, *sc.Domain, user)
		case sc.System != nil && sc.System.All:
			return k.scopeSystem(ctx, t, user)
		default:
			return &registry.FieldError{Field: "auth.scope", Reason: "name a project (by id, or name and domain), a domain, or the system ({\"all\": true})"}
		}
	}
	if want == nil {
		return nil
	}
	var p Project
	var err error
	if want.ID != "" {
		p, err = k.Dir.GetProject(ctx, want.ID)
	} else {
		var domainID string
		if domainID, err = k.domainID(ctx, want.Domain); err == nil {
			p, err = k.Dir.FindProject(ctx, domainID, want.Name)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: no access to the requested project", ErrUnauthorized)
	}
	roles, err := k.Dir.ScopeProject(ctx, p, user)
	if err != nil {
		return err
	}
	t.ProjectID, t.ProjectName, t.ProjectDomain, t.Roles = p.ID, p.Name, p.DomainID, roles
	t.AdminProject = IsAdminProject(p)
	return nil
}

// domainEnabled reports whether a domain exists and is enabled.
func (k *Keystone) domainEnabled(ctx context.Context, id string) bool {
	return k.Dir.domainEnabled(ctx, id)
}

// scopeDomain scopes a token to a domain the user holds a role on.
func (k *Keystone) scopeDomain(ctx context.Context, t *Token, want nameOrID, user User) error {
	var dom Domain
	var err error
	if want.ID != "" {
		dom, err = k.Dir.GetDomain(ctx, want.ID)
	} else {
		dom, err = k.Dir.FindDomain(ctx, want.Name)
	}
	if err != nil || !dom.Enabled {
		return fmt.Errorf("%w: no access to the requested domain", ErrUnauthorized)
	}
	roles, err := k.Dir.RolesOnDomain(ctx, dom.ID, user.ID)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return fmt.Errorf("%w: user %s has no role on domain %s", ErrUnauthorized, user.Name, dom.Name)
	}
	t.DomainID, t.DomainName, t.Roles = dom.ID, dom.Name, roles
	return nil
}

// scopeSystem scopes a token to the system, for a user holding a role
// there.
func (k *Keystone) scopeSystem(ctx context.Context, t *Token, user User) error {
	roles, err := k.Dir.RolesOnSystem(ctx, user.ID)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return fmt.Errorf("%w: user %s has no role on the system", ErrUnauthorized, user.Name)
	}
	t.System, t.Roles = true, roles
	return nil
}

// IsAdminProject reports whether p is the cloud's admin project.
func IsAdminProject(p Project) bool {
	return p.Name == AdminProjectName && p.DomainID == DefaultDomainID
}

func (k *Keystone) tokenBody(r *http.Request, t Token, noCatalog bool) map[string]any {
	body := map[string]any{
		"methods": t.Methods,
		"user": map[string]any{"id": t.UserID, "name": t.UserName, "domain": map[string]string{"id": t.UserDomainID, "name": t.UserDomainName},
			"password_expires_at": passwordExpiry(t.PasswordExpiresAt)},
		"audit_ids":  []string{t.AuditID},
		"issued_at":  t.IssuedAt.Format(keystoneTime),
		"expires_at": t.ExpiresAt.Format(keystoneTime),
		"is_domain":  false,
	}
	if t.AppCred != nil {
		body["application_credential"] = t.AppCred
	}
	if t.Trust != nil {
		body["OS-TRUST:trust"] = map[string]any{"id": t.Trust.ID, "impersonation": t.Trust.Impersonation,
			"trustor_user": map[string]string{"id": t.Trust.TrustorID}, "trustee_user": map[string]string{"id": t.Trust.TrusteeID}}
	}
	switch {
	case t.Scoped():
		domName := t.ProjectDomain
		if dom, err := k.Dir.GetDomain(r.Context(), t.ProjectDomain); err == nil {
			domName = dom.Name
		}
		body["project"] = map[string]any{"id": t.ProjectID, "name": t.ProjectName, "domain": map[string]string{"id": t.ProjectDomain, "name": domName}}
		body["is_admin_project"] = t.AdminProject
	case t.DomainID != "":
		body["domain"] = map[string]string{"id": t.DomainID, "name": t.DomainName}
	case t.System:
		body["system"] = map[string]bool{"all": true}
	default:
		return body
	}
	roles := make([]map[string]string, len(t.Roles))
	for i, x := range t.Roles {
		roles[i] = map[string]string{"id": x.ID, "name": x.Name}
	}
	body["roles"] = roles
	if !noCatalog && k.Catalog != nil {
		body["catalog"] = ForProject(k.Catalog(BaseURL(r)), t.ProjectID)
	}
	return body
}

func (k *Keystone) validate(w http.ResponseWriter, r *http.Request) {
	caller, _ := TokenFrom(r.Context())
	subject := r.Header.Get("X-Subject-Token")
	t, err := k.Tokens.Validate(r.Context(), subject)
	if err != nil {
		k.fail(w, r, fmt.Errorf("%w: could not find the subject token", ErrNotFound))
		return
	}
	if subject != AuthToken(r) && !caller.IdentityAdmin() && caller.UserID != t.UserID {
		k.fail(w, r, fmt.Errorf("%w: only an admin may validate another user's token", ErrForbidden))
		return
	}
	// Keystone shows a token with access rules only to a validator that
	// says it enforces them; one that does not would let it do anything.
	if t.AppCred != nil && len(t.AppCred.AccessRules) > 0 && !enforcesAccessRules(r) {
		k.fail(w, r, fmt.Errorf("%w: Failed to validate token", ErrNotFound))
		return
	}
	w.Header().Set("X-Subject-Token", subject)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": k.tokenBody(r, t, r.URL.Query().Has("nocatalog"))})
}

func (k *Keystone) revoke(w http.ResponseWriter, r *http.Request) {
	caller, _ := TokenFrom(r.Context())
	subject := r.Header.Get("X-Subject-Token")
	t, err := k.Tokens.Validate(r.Context(), subject)
	if err != nil {
		k.fail(w, r, fmt.Errorf("%w: could not find the subject token", ErrNotFound))
		return
	}
	if !caller.IdentityAdmin() && caller.UserID != t.UserID {
		k.fail(w, r, fmt.Errorf("%w: only an admin may revoke another user's token", ErrForbidden))
		return
	}
	if err := k.Tokens.Revoke(r.Context(), subject); err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *Keystone) catalog(w http.ResponseWriter, r *http.Request) {
	var cat []Service
	if k.Catalog != nil {
		t, _ := TokenFrom(r.Context())
		cat = ForProject(k.Catalog(BaseURL(r)), t.ProjectID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"catalog": cat})
}

func (k *Keystone) myProjects(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	k.writeUserProjects(w, r, t.UserID)
}

func (k *Keystone) userProjects(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	user := chi.URLParam(r, "user")
	if user != t.UserID && !t.IdentityAdmin() {
		k.fail(w, r, fmt.Errorf("%w: another user's projects", ErrForbidden))
		return
	}
	k.writeUserProjects(w, r, user)
}

func (k *Keystone) writeUserProjects(w http.ResponseWriter, r *http.Request, userID string) {
	ps, err := k.Dir.ProjectsOf(r.Context(), userID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": entities(r, "projects", ps, func(p Project) string { return p.ID }), "links": links(r)})
}

// middleware request ID for error bodies.
func requestID(r *http.Request) string { return middleware.GetReqID(r.Context()) }

// passwordExpiry is a token's user.password_expires_at: null for never.
func passwordExpiry(at *time.Time) any {
	if at == nil {
		return nil
	}
	return at.UTC().Format(keystoneTime)
}
