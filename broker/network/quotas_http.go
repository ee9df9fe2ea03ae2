package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
)

// QuotaAdmin reads and changes limits: quota.Limits.
type QuotaAdmin interface {
	Get(ctx context.Context, project string) (quota.Amounts, error)
	Defaults() quota.Amounts
	Set(ctx context.Context, project string, limits quota.Amounts) (quota.Amounts, error)
	Reset(ctx context.Context, project string) error
	// Overridden lists the projects an admin set limits for.
	Overridden(ctx context.Context) ([]string, error)
}

var _ QuotaAdmin = (*quota.Limits)(nil)

// quotaTarget is the project a quota request names, which only the token's
// own project or a cloud admin may read.
func (h *Neutron) quotaTarget(w http.ResponseWriter, r *http.Request, action string, adminOnly bool) (string, bool) {
	t, _ := identity.TokenFrom(r.Context())
	p := chi.URLParam(r, "project")
	if (adminOnly || p != t.ProjectID) && !t.CloudAdmin() {
		h.fail(w, r, forbidden(action))
		return "", false
	}
	return p, true
}

// limitsOf returns project's limits: the admin's when quotas are kept,
// else unlimited.
func (h *Neutron) limitsOf(ctx context.Context, project string) (quota.Amounts, error) {
	if h.QuotaAdmin == nil {
		out := quota.Amounts{}
		for _, dim := range neutronQuotas {
			out[dim] = quota.Unlimited
		}
		return out, nil
	}
	return h.QuotaAdmin.Get(ctx, project)
}

// neutronView is a quota under Neutron's names: the limits, or with
// details each as {limit, used, reserved}.
func neutronView(limits, used, reserved quota.Amounts, details bool) map[string]any {
	out := map[string]any{}
	for name, dim := range neutronQuotas {
		if details {
			out[name] = map[string]int{"limit": limits[dim], "used": used[dim], "reserved": reserved[dim]}
		} else {
			out[name] = limits[dim]
		}
	}
	return out
}

// showQuota answers GET /quotas/{project} (and /details): the token's
// project's, or any for a cloud admin. Usage is the quota ledger's count,
// one record, never a list over the peers.
func (h *Neutron) showQuota(details bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := h.quotaTarget(w, r, "get_quota", false)
		if !ok {
			return
		}
		limits, err := h.limitsOf(r.Context(), p)
		var used, reserved quota.Amounts
		if t, _ := identity.TokenFrom(r.Context()); err == nil && details && p == t.ProjectID {
			// A project's first look at its networking makes its default
			// security group, as in Neutron, so its usage counts it.
			_, err = h.Service.SecurityGroups(r.Context(), p)
		}
		if err == nil && details && h.Service.Quota != nil {
			used, reserved, err = h.Service.Quota.Usage(r.Context(), quota.Scope{Project: p})
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota": neutronView(limits, used, reserved, details)})
	}
}

// defaultQuota answers GET /quotas/{project}/default.
func (h *Neutron) defaultQuota(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.quotaTarget(w, r, "get_quota", false); !ok {
		return
	}
	d := quota.Defaults
	if h.QuotaAdmin != nil {
		d = h.QuotaAdmin.Defaults()
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota": neutronView(d, nil, nil, false)})
}

// listQuotas answers GET /quotas (cloud admins): the projects with limits
// of their own, each with its quota.
func (h *Neutron) listQuotas(w http.ResponseWriter, r *http.Request) {
	t, _ := identity.TokenFrom(r.Context())
	if !t.CloudAdmin() {
		h.fail(w, r, forbidden("get_quota"))
		return
	}
	out := []map[string]any{}
	if h.QuotaAdmin != nil {
		projects, err := h.QuotaAdmin.Overridden(r.Context())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, p := range projects {
			limits, err := h.QuotaAdmin.Get(r.Context(), p)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			v := neutronView(limits, nil, nil, false)
			v["project_id"], v["tenant_id"] = p, p
			out = append(out, v)
		}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quotas": out})
}

// updateQuota answers PUT /quotas/{project} (cloud admins): the named
// limits change, the others keep theirs. Every bad value is named.
func (h *Neutron) updateQuota(w http.ResponseWriter, r *http.Request) {
	p, ok := h.quotaTarget(w, r, "update_quota", true)
	if !ok {
		return
	}
	if h.QuotaAdmin == nil {
		h.fail(w, r, &Error{Status: 501, Type: "HTTPNotImplemented", Message: "Quotas are not configurable on this cloud.", Err: ErrInvalid})
		return
	}
	b, err := decodeBody(w, r, "quota")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	limits, err := parseNeutronQuota(b)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	set, err := h.QuotaAdmin.Set(r.Context(), p, limits)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	t, _ := identity.TokenFrom(r.Context())
	h.Log.WithFields(logrus.Fields{"project": p, "limits": limits, "user": t.UserID}).Info("network quota set")
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota": neutronView(set, nil, nil, false)})
}

// parseNeutronQuota reads a PUT body's limits: integers (or strings of
// them) from -1 to quota.MaxLimit, under Neutron's names. Neutron's other
// quotas (routers, floating IPs, ...) name resources this cloud does not
// have, so setting them is refused rather than accepted and dropped.
func parseNeutronQuota(b body) (quota.Amounts, error) {
	limits := quota.Amounts{}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(b)) {
		dim, ok := neutronQuotas[k]
		if !ok {
			errs = append(errs, fmt.Sprintf("Unrecognized attribute(s) '%s'", k))
			continue
		}
		var n json.Number
		var s string
		v, err := int64(0), error(nil)
		if json.Unmarshal(b[k], &n) == nil {
			v, err = n.Int64()
		} else if json.Unmarshal(b[k], &s) == nil {
			v, err = json.Number(s).Int64()
		} else {
			err = errors.New("not a number")
		}
		if err != nil || v < quota.Unlimited || v > quota.MaxLimit {
			errs = append(errs, fmt.Sprintf("'%s' for %s is not an integer from -1 (unlimited) to %d", b[k], k, quota.MaxLimit))
			continue
		}
		limits[dim] = int(v)
	}
	if len(errs) > 0 {
		return nil, &Error{Status: 400, Type: "HTTPBadRequest", Message: "Invalid input for quota. Reason: " + joinReasons(errs) + ".", Err: ErrInvalid}
	}
	return limits, nil
}

func joinReasons(rs []string) string {
	out := rs[0]
	for _, r := range rs[1:] {
		out += "; " + r
	}
	return out
}

// resetQuota answers DELETE /quotas/{project} (cloud admins): the
// defaults apply again.
func (h *Neutron) resetQuota(w http.ResponseWriter, r *http.Request) {
	p, ok := h.quotaTarget(w, r, "delete_quota", true)
	if !ok {
		return
	}
	if h.QuotaAdmin == nil {
		h.fail(w, r, &Error{Status: 501, Type: "HTTPNotImplemented", Message: "Quotas are not configurable on this cloud.", Err: ErrInvalid})
		return
	}
	if err := h.QuotaAdmin.Reset(r.Context(), p); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
