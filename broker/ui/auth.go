package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
)

type ctxKey struct{}

// caller is who a request is from: its session and the token validated
// for this request.
type caller struct {
	s     *session
	token identity.Token
}

func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(ctxKey{}).(*caller)
	return c
}

// requireSession loads the session and validates its token; without
// both, pages redirect to the login form (htmx requests are told to).
func (u *UI) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := cookieValue(r, sessionCookie)
		s, ok := u.sessions.get(id, u.SessionIdle)
		var t identity.Token
		if ok {
			var err error
			if t, err = u.Keystone.Tokens.Validate(r.Context(), s.currentToken()); err != nil {
				// Revoked, expired, its user disabled: the session ends.
				u.sessions.drop(id)
				ok = false
			}
		}
		if !ok {
			if r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", Prefix+"/login")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, &caller{s: s, token: t})))
	})
}

// checkCSRF refuses a POST without the session's CSRF token.
func (u *UI) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			got := r.Header.Get(csrfHeader)
			if got == "" {
				got = r.PostFormValue(csrfField)
			}
			if !sameToken(got, callerOf(r).s.csrf) {
				u.errorPage(w, r, http.StatusForbidden, "The form was stale or did not come from this dashboard (CSRF token missing or wrong). Reload the page and try again.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireAdmin keeps Cosmos to cloud admins (the admin role on the admin
// project), on every request.
func (u *UI) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !callerOf(r).token.CloudAdmin() {
			u.errorPage(w, r, http.StatusForbidden, "The operator pages need the admin role on the "+identity.AdminProjectName+" project.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	u.showLogin(w, r, http.StatusOK, "")
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, code int, problem string) {
	tok := randomToken()
	setCookie(w, r, loginCookie, tok, 600)
	u.render(w, r, code, "login", view{Title: "Log in", Data: map[string]string{
		"CSRF": tok, "Problem": problem, "User": r.PostFormValue("username"), "Domain": r.PostFormValue("domain")}})
}

// login checks the password through Keystone's token handler and starts
// a session on the user's default project (or its first one).
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	if !sameToken(r.PostFormValue(csrfField), cookieValue(r, loginCookie)) {
		u.showLogin(w, r, http.StatusForbidden, "The login form was stale; try again.")
		return
	}
	domain := strings.TrimSpace(r.PostFormValue("domain"))
	if domain == "" {
		domain = "Default"
	}
	body := map[string]any{"auth": map[string]any{"identity": map[string]any{
		"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{
			"name": strings.TrimSpace(r.PostFormValue("username")), "password": r.PostFormValue("password"),
			"domain": map[string]string{"name": domain}}}}}}
	tok, t, err := u.issue(r, body)
	if err != nil {
		u.showLogin(w, r, statusOr(err, http.StatusUnauthorized), err.Error())
		return
	}
	if !t.Scoped() {
		// No default project: scope to the first the user has a role on.
		tok, t, err = u.rescope(r, tok, "")
		if err != nil {
			u.showLogin(w, r, http.StatusForbidden, err.Error())
			return
		}
	}
	s := &session{token: tok, userID: t.UserID, userName: t.UserName, expiresAt: t.ExpiresAt}
	setCookie(w, r, sessionCookie, u.sessions.create(s, u.SessionIdle), 0)
	setCookie(w, r, loginCookie, "", -1)
	u.Log.WithField("user", t.UserName).Info("dashboard login")
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	_ = u.Keystone.Tokens.Revoke(r.Context(), c.s.currentToken())
	u.sessions.drop(cookieValue(r, sessionCookie))
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// switchProject rescopes the session's token to another of the user's
// projects (Keystone's token method: the new token dies with the old).
func (u *UI) switchProject(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	old := c.s.currentToken()
	tok, t, err := u.rescope(r, old, r.PostFormValue("project"))
	if err != nil {
		// Keystone answers 401 for a project the user has no role on.
		u.errorPage(w, r, http.StatusForbidden, "You have no role on that project, or it is disabled.")
		return
	}
	c.s.swap(tok, t.ExpiresAt)
	_ = u.Keystone.Tokens.Revoke(r.Context(), old)
	http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
}

// rescope issues a token for project (the user's first project when
// empty) from token.
func (u *UI) rescope(r *http.Request, token, project string) (string, identity.Token, error) {
	if project == "" {
		t, err := u.Keystone.Tokens.Validate(r.Context(), token)
		if err != nil {
			return "", identity.Token{}, err
		}
		ps, err := u.Keystone.Dir.ProjectsOf(r.Context(), t.UserID)
		if err != nil || len(ps) == 0 {
			return "", identity.Token{}, &loginError{code: http.StatusForbidden, msg: "You have no role on any project; ask an administrator for one."}
		}
		project = ps[0].ID
	}
	return u.issue(r, map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]string{"id": token}},
		"scope":    map[string]any{"project": map[string]string{"id": project}}}})
}

// loginError is a refusal from Keystone, put in words for the form.
type loginError struct {
	code int
	msg  string
}

func (e *loginError) Error() string { return e.msg }

func statusOr(err error, code int) int {
	var le *loginError
	if errors.As(err, &le) {
		return le.code
	}
	return code
}

// issue asks the identity service's own token handler for a token, in
// process: the dashboard logs in as any Keystone client does, with the
// same throttling, lockout and password expiry.
func (u *UI) issue(r *http.Request, body any) (string, identity.Token, error) {
	raw, _ := json.Marshal(body)
	// A context without the dashboard's own chi routing state: the
	// identity router routes this request from its path.
	ctx := context.WithValue(r.Context(), chi.RouteCtxKey, (*chi.Context)(nil))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v3/auth/tokens?nocatalog", bytes.NewReader(raw))
	if err != nil {
		return "", identity.Token{}, err
	}
	req.Host, req.TLS = r.Host, r.TLS
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	u.keystone.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return "", identity.Token{}, keystoneRefusal(rec.Code, rec.Body.Bytes())
	}
	tok := rec.Header().Get("X-Subject-Token")
	t, err := u.Keystone.Tokens.Validate(r.Context(), tok)
	return tok, t, err
}

// keystoneRefusal words Keystone's error for the login form. A wrong user
// name and a wrong password read the same, as Keystone answers them.
func keystoneRefusal(code int, body []byte) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	switch code {
	case http.StatusUnauthorized:
		msg := "Wrong user name or password."
		if strings.Contains(e.Error.Message, "expired") || strings.Contains(e.Error.Message, "locked") {
			msg = e.Error.Message
		}
		return &loginError{code: code, msg: msg}
	case http.StatusTooManyRequests:
		return &loginError{code: code, msg: "Too many failed logins; try again later."}
	case http.StatusForbidden, http.StatusNotFound, http.StatusBadRequest:
		return &loginError{code: code, msg: e.Error.Message}
	}
	return &loginError{code: http.StatusBadGateway, msg: "The identity service could not log you in; try again."}
}
