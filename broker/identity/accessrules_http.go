package identity

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"
)

// accessRuleRoutes serves /v3/users/{user}/access_rules (behind
// Authenticate), as Keystone's default policy allows: a user reads and
// deletes their own rules, an identity admin anyone's; another user's are
// 403 to everyone else. Tokens from trusts are refused, as Keystone
// refuses delegated tokens here.
func (k *Keystone) accessRuleRoutes(r chi.Router) {
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, _ := TokenFrom(r.Context())
			switch {
			case t.Trust != nil:
				k.fail(w, r, fmt.Errorf("%w: a delegated token cannot manage access rules", ErrForbidden))
			case chi.URLParam(r, "user") != t.UserID && !t.IdentityAdmin():
				k.fail(w, r, fmt.Errorf("%w: another user's access rules", ErrForbidden))
			default:
				next.ServeHTTP(w, r)
			}
		})
	})
	r.Get("/", k.listAccessRules)
	r.Head("/", k.listAccessRules)
	r.Get("/{id}", k.showAccessRule)
	r.Head("/{id}", k.showAccessRule)
	r.Delete("/{id}", k.deleteAccessRule)
}

func (k *Keystone) listAccessRules(w http.ResponseWriter, r *http.Request) {
	user := chi.URLParam(r, "user")
	rules, err := k.Dir.AccessRulesOf(r.Context(), user)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	out := make([]map[string]any, 0, len(rules))
	for _, rule := range rules {
		if (q.Has("service") && q.Get("service") != rule.Service) || (q.Has("method") && q.Get("method") != rule.Method) ||
			(q.Has("path") && q.Get("path") != rule.Path) {
			continue
		}
		out = append(out, accessRuleView(r, user, rule))
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_rules": out, "links": links(r)})
}

func (k *Keystone) showAccessRule(w http.ResponseWriter, r *http.Request) {
	user := chi.URLParam(r, "user")
	rule, err := k.Dir.AccessRule(r.Context(), user, chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_rule": accessRuleView(r, user, rule)})
}

func (k *Keystone) deleteAccessRule(w http.ResponseWriter, r *http.Request) {
	user, id := chi.URLParam(r, "user"), chi.URLParam(r, "id")
	if err := NewAppCredentials(k.Dir).DeleteAccessRule(r.Context(), user, id); err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithFields(logrus.Fields{"user": user, "access_rule": id}).Info("access rule deleted")
	w.WriteHeader(http.StatusNoContent)
}
