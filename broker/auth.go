package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// authenticate requires a valid token (Keystone's, the same on every API
// of the broker) and names the user in the request's log lines.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return s.Identity.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := identity.TokenFrom(r.Context())
		ctx := context.WithValue(r.Context(), loggerKey, logFrom(r.Context(), s.log).WithField("user", t.UserName))
		next.ServeHTTP(w, r.WithContext(ctx))
	}))
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Domain is the user's domain name; default Default.
	Domain string `json:"domain"`
	// Project scopes the token (name, in the user's domain); default the
	// user's default project.
	Project string `json:"project"`
	// TTL is a Go duration ("8h"); default 24h, at most 7 days.
	TTL string `json:"ttl,omitempty"`
}

// login is the CLI's short way to a token: the same token Keystone's
// POST /v3/auth/tokens issues, from a flat body.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ttl := 24 * time.Hour
	var errs []error
	if req.Username == "" {
		errs = append(errs, &registry.FieldError{Field: "username", Reason: "is required"})
	}
	if req.Password == "" {
		errs = append(errs, &registry.FieldError{Field: "password", Reason: "is required"})
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			errs = append(errs, &registry.FieldError{Field: "ttl", Reason: "must be a duration such as 8h, at most 168h"})
		}
		ttl = d
	}
	if err := errors.Join(errs...); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Read from the Store: memory may lag behind a revocation.
	token, t, err := s.loginUser(identity.ReadStore(r.Context()), req, ttl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("X-Subject-Token", token)
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "principal": t})
}

func (s *Server) loginUser(ctx context.Context, req loginRequest, ttl time.Duration) (string, identity.Token, error) {
	dir := s.Identity.Dir
	unauthorized := fmt.Errorf("%w: wrong user name or password", identity.ErrUnauthorized)
	domainID := identity.DefaultDomainID
	if req.Domain != "" {
		d, err := dir.FindDomain(ctx, req.Domain)
		if err != nil {
			return "", identity.Token{}, unauthorized
		}
		domainID = d.ID
	}
	u, err := dir.FindUser(ctx, domainID, req.Username)
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return "", identity.Token{}, err
	}
	if u, err = dir.CheckPassword(ctx, u, req.Password); err != nil {
		return "", identity.Token{}, unauthorized
	}
	projectID := u.DefaultProjectID
	if req.Project != "" {
		p, err := dir.FindProject(ctx, domainID, req.Project)
		if err != nil {
			return "", identity.Token{}, fmt.Errorf("%w: no access to project %q", identity.ErrUnauthorized, req.Project)
		}
		projectID = p.ID
	}
	t := identity.Token{UserID: u.ID, UserName: u.Name, UserDomainID: u.DomainID, Methods: []string{"password"}}
	if projectID != "" {
		p, err := dir.GetProject(ctx, projectID)
		if err != nil {
			return "", identity.Token{}, err
		}
		roles, err := dir.ScopeProject(ctx, p, u)
		if err != nil {
			return "", identity.Token{}, err
		}
		t.ProjectID, t.ProjectName, t.ProjectDomain, t.Roles = p.ID, p.Name, p.DomainID, roles
		t.AdminProject = identity.IsAdminProject(p)
	}
	return s.Identity.Tokens.Issue(ctx, t, ttl)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	t, _ := identity.TokenFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"principal": t})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Identity.Tokens.Revoke(r.Context(), identity.AuthToken(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
