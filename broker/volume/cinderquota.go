package volume

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
)

// cinderQuotas are the quota_set keys Cinder's os-quota-sets shows and a
// cloud admin may set, and the ledger's dimension each is. Only what the
// broker enforces is advertised: no backups, groups or per-type limits.
var cinderQuotas = map[string]quota.Resource{
	"volumes": quota.Volumes, "gigabytes": quota.Gigabytes, "snapshots": quota.Snapshots,
}

// cinderDims are the ledger dimensions Cinder owns, in a stable order.
var cinderDims = []quota.Resource{quota.Gigabytes, quota.Snapshots, quota.Volumes}

// QuotaAdmin changes quotas: quota.Limits. Cinder's os-quota-sets PUT
// sets the volume limits; DELETE forgets them (only Cinder's: a
// project's Nova and Neutron limits stay).
type QuotaAdmin interface {
	// Defaults is the quota of a project nobody set one for.
	Defaults() quota.Amounts
	// Set changes the named limits of project and returns its whole quota.
	Set(ctx context.Context, project string, limits quota.Amounts) (quota.Amounts, error)
	// Unset forgets the named limits of project: the defaults apply.
	Unset(ctx context.Context, project string, dims ...quota.Resource) (quota.Amounts, error)
}

var _ QuotaAdmin = (*quota.Limits)(nil)

// quotaRoutes mounts os-quota-sets and limits on r (with and without the
// project in the path).
func (c *Cinder) quotaRoutes(r chi.Router) {
	r.Get("/limits", c.limits)
	r.Route("/os-quota-sets/{target}", func(r chi.Router) {
		r.Get("/", c.quotaSet)
		r.Get("/defaults", c.quotaDefaults)
		r.Put("/", c.updateQuotaSet)
		r.Delete("/", c.deleteQuotaSet)
	})
}

// cinderQuotaSets is who may read and change Cinder's quota sets.
var cinderQuotaSets = osapi.QuotaSets{Rule: "volume_extension:quotas"}

// quotaTarget returns the project a quota set request is about, refusing
// (403, as Cinder's policy) a project other than the caller's unless the
// caller is a cloud admin.
func (c *Cinder) quotaTarget(w http.ResponseWriter, r *http.Request) (string, bool) {
	target, cl := chi.URLParam(r, "target"), caller(r)
	return target, cinderQuotaSets.MayRead(w, r, target, cl.Project, cl.Admin)
}

// quotaView is a quota_set: the limits, or with usage {limit, in_use,
// reserved} per key.
func quotaView(target string, limits, used, reserved quota.Amounts, usage bool) map[string]any {
	out := map[string]any{"id": target}
	for k, dim := range cinderQuotas {
		if usage {
			out[k] = map[string]int{"limit": limits[dim], "in_use": used[dim], "reserved": reserved[dim]}
		} else {
			out[k] = limits[dim]
		}
	}
	return out
}

// quotaSet answers GET os-quota-sets/{target}[?usage=true].
func (c *Cinder) quotaSet(w http.ResponseWriter, r *http.Request) {
	target, ok := c.quotaTarget(w, r)
	if !ok {
		return
	}
	usage, err := strconv.ParseBool(cmp.Or(r.URL.Query().Get("usage"), "false"))
	if err != nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: usage must be true or false")
		return
	}
	limits, err := c.Volumes.Quota.Quota(r.Context(), target)
	if err != nil {
		c.quotaFail(w, r, err)
		return
	}
	var used, reserved quota.Amounts
	if usage {
		if used, reserved, err = c.Volumes.Quota.Usage(r.Context(), quota.Scope{Project: target}); err != nil {
			c.quotaFail(w, r, err)
			return
		}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(target, limits, used, reserved, usage)})
}

// quotaDefaults answers GET os-quota-sets/{target}/defaults.
func (c *Cinder) quotaDefaults(w http.ResponseWriter, r *http.Request) {
	if c.QuotaAdmin == nil {
		osapi.Fault(w, r, http.StatusNotImplemented, "Quotas are not configurable on this cloud.")
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(chi.URLParam(r, "target"), c.QuotaAdmin.Defaults(), nil, nil, false)})
}

// quotaAdmin returns the quota admin when the caller is a cloud admin and
// quotas can be changed.
func (c *Cinder) quotaAdmin(w http.ResponseWriter, r *http.Request) (QuotaAdmin, bool) {
	return c.QuotaAdmin, cinderQuotaSets.MayChange(w, r, caller(r).Admin, c.QuotaAdmin != nil)
}

// updateQuotaSet answers PUT os-quota-sets/{target} (cloud admin only):
// the named limits change, the others keep theirs. A limit below what the
// project uses and has reserved is refused unless forced. The answer is
// the whole quota set, without id.
func (c *Cinder) updateQuotaSet(w http.ResponseWriter, r *http.Request) {
	qa, ok := c.quotaAdmin(w, r)
	if !ok {
		return
	}
	var body struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if !decode(w, r, &body, `{"quota_set": {"volumes": N, "gigabytes": N, "snapshots": N}}`) {
		return
	}
	if len(body.QuotaSet) == 0 {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input received: quota_set: expected {"quota_set": {"volumes": N, "gigabytes": N, "snapshots": N}}`)
		return
	}
	target := chi.URLParam(r, "target")
	limits, force, err := parseQuotaSet(target, body.QuotaSet)
	if err == nil && !force {
		err = c.belowUsage(r, target, limits)
	}
	if err != nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	q, err := qa.Set(r.Context(), target, limits)
	if err != nil {
		c.quotaFail(w, r, err)
		return
	}
	c.Log.WithFields(logrus.Fields{"project": target, "limits": limits, "user": caller(r).User}).Info("volume quota set")
	view := quotaView(target, q, nil, nil, false)
	delete(view, "id")
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": view})
}

// parseQuotaSet reads a PUT body's quota_set: every key one Cinder shows
// here, every value an integer (or a string of one) from -1 (unlimited)
// to quota.MaxLimit, "force" (a boolean: set a limit below what the
// project uses) and "tenant_id" (cinderclient sends it: the target
// project, or a refusal). It returns every problem, each naming its key.
func parseQuotaSet(target string, raw map[string]json.RawMessage) (limits quota.Amounts, force bool, err error) {
	limits = quota.Amounts{}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if k == "tenant_id" {
			var id string
			if json.Unmarshal(raw[k], &id) != nil || id != target {
				errs = append(errs, fmt.Errorf("quota_set.tenant_id: %s is not the project in the path", raw[k]))
			}
			continue
		}
		if k == "force" {
			if json.Unmarshal(raw[k], &force) != nil {
				errs = append(errs, fmt.Errorf("quota_set.force: %s is not a boolean", raw[k]))
			}
			continue
		}
		dim, ok := cinderQuotas[k]
		if !ok {
			errs = append(errs, fmt.Errorf("quota_set.%s: not a quota of this cloud (it has %s)", k, strings.Join(slices.Sorted(maps.Keys(cinderQuotas)), ", ")))
			continue
		}
		n, ok := quota.ParseLimit(raw[k])
		if !ok || n < quota.Unlimited || n > quota.MaxLimit {
			errs = append(errs, fmt.Errorf("quota_set.%s: %s is not an integer from -1 (unlimited) to %d", k, raw[k], quota.MaxLimit))
			continue
		}
		limits[dim] = n
	}
	return limits, force, errors.Join(errs...)
}

// belowUsage refuses a limit below what the project already uses and has
// reserved (Cinder: "Quota limit must be equal or greater than existing
// resources").
func (c *Cinder) belowUsage(r *http.Request, project string, limits quota.Amounts) error {
	used, reserved, err := c.Volumes.Quota.Usage(r.Context(), quota.Scope{Project: project})
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range quota.Below(limits, used, reserved) {
		errs = append(errs, fmt.Errorf("quota_set.%s: quota limit %d must be equal or greater than existing resources (%d used and reserved)", o.Resource, o.Limit, o.Used))
	}
	return errors.Join(errs...)
}

// deleteQuotaSet answers DELETE os-quota-sets/{target} (cloud admin
// only): the project's volume limits are the defaults again.
func (c *Cinder) deleteQuotaSet(w http.ResponseWriter, r *http.Request) {
	qa, ok := c.quotaAdmin(w, r)
	if !ok {
		return
	}
	target := chi.URLParam(r, "target")
	if _, err := qa.Unset(r.Context(), target, cinderDims...); err != nil {
		c.quotaFail(w, r, err)
		return
	}
	c.Log.WithFields(logrus.Fields{"project": target, "user": caller(r).User}).Info("volume quota reset to the defaults")
	w.WriteHeader(http.StatusOK)
}

// limits answers GET /limits: the caller's project's volume quota and
// what it uses (Cinder's absolute limits; no rate limits).
func (c *Cinder) limits(w http.ResponseWriter, r *http.Request) {
	project := caller(r).Project
	limits, err := c.Volumes.Quota.Quota(r.Context(), project)
	if err != nil {
		c.quotaFail(w, r, err)
		return
	}
	used, _, err := c.Volumes.Quota.Usage(r.Context(), quota.Scope{Project: project})
	if err != nil {
		c.quotaFail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]int{
		"maxTotalVolumes": limits[quota.Volumes], "maxTotalVolumeGigabytes": limits[quota.Gigabytes], "maxTotalSnapshots": limits[quota.Snapshots],
		"totalVolumesUsed": used[quota.Volumes], "totalGigabytesUsed": used[quota.Gigabytes], "totalSnapshotsUsed": used[quota.Snapshots],
	}}})
}

// quotaFail answers a quota request's failure: a project ID the ledger
// refuses is 400 naming it, anything else internal.
func (c *Cinder) quotaFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, quota.ErrInvalid) {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: the project ID "+strconv.Quote(chi.URLParam(r, "target"))+" is not valid")
		return
	}
	c.fail(w, r, err)
}
