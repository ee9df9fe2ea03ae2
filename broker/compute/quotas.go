package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
)

// novaQuotas are the quota_set keys a cloud admin may set through Nova,
// and the ledger's dimension each limits. security_groups and
// security_group_rules are Neutron's, which Nova 2.1 still shows and sets
// (later microversions drop them).
var novaQuotas = map[string]quota.Resource{
	"instances": quota.Instances, "cores": quota.Cores, "ram": quota.RAM, "key_pairs": quota.KeyPairs,
	"security_groups": quota.SecurityGroups, "security_group_rules": quota.SecurityGroupRules,
	"server_groups": quota.ServerGroups, "server_group_members": quota.ServerGroupMembers,
}

// maxQuota is the largest limit Nova accepts (its database's MAX_INT).
const maxQuota = quota.MaxLimit

// fixedQuotas are Nova's other quota_set keys, which the broker does not
// vary by project (see limits.go). A client that sends one back with its
// current value (a read-modify-write of the whole set) is not refused.
var fixedQuotas = map[string]int{
	"metadata_items": maxMetadataItems, "injected_files": maxInjectedFiles,
	"injected_file_content_bytes": maxInjectedBytes, "injected_file_path_bytes": maxInjectedPath,
	"fixed_ips": unlimited, "floating_ips": unlimited,
}

// QuotaAdmin changes quotas: quota.Limits. Nova's os-quota-sets PUT sets,
// DELETE resets to the defaults.
type QuotaAdmin interface {
	// Defaults is the quota of a project nobody set one for.
	Defaults() quota.Amounts
	// Set changes the named limits of project and returns its whole quota.
	Set(ctx context.Context, project string, limits quota.Amounts) (quota.Amounts, error)
	// Reset forgets project's limits: the defaults apply again.
	Reset(ctx context.Context, project string) error
}

var _ QuotaAdmin = (*quota.Limits)(nil)

// quotaError turns the ledger's refusal into Nova's 403 ("Quota exceeded
// for instances: Requested 1, but already used 2 of 2 instances"); any
// other error is returned as is.
func quotaError(err error) error {
	var oe *quota.OverError
	if errors.As(err, &oe) {
		return &Error{Message: oe.Error(), Err: ErrQuotaExceeded}
	}
	return err
}

// parseQuotaSet reads a PUT /os-quota-sets body's quota_set: every key a
// settable limit (an integer, or a string of one, from -1 to maxQuota),
// a fixed one at its value, or "force" (set a limit below what the project
// already uses). It returns every problem.
func parseQuotaSet(raw map[string]json.RawMessage) (limits quota.Amounts, force bool, err error) {
	limits = quota.Amounts{}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		if k == "force" {
			var s string
			if json.Unmarshal(v, &force) != nil {
				if json.Unmarshal(v, &s) != nil || !slices.Contains([]string{"true", "false", "True", "False"}, s) {
					errs = append(errs, invalid(k, "Invalid input for field/attribute force. Value: %s. It is not a boolean", v))
				}
				force = strings.EqualFold(s, "true")
			}
			continue
		}
		dim, settable := novaQuotas[k]
		fixed, isFixed := fixedQuotas[k]
		if !settable && !isFixed {
			errs = append(errs, invalid(k, "Invalid input for field/attribute quota_set. Additional properties are not allowed (%q was unexpected)", k))
			continue
		}
		n, ok := quota.ParseLimit(v)
		if !ok || n < unlimited || n > maxQuota {
			errs = append(errs, invalid(k, "Invalid input for field/attribute %s. Value: %s. It must be an integer from -1 (unlimited) to %d", k, v, maxQuota))
			continue
		}
		switch {
		case settable:
			limits[dim] = n
		case n != fixed:
			errs = append(errs, invalid(k, "Quota %s is fixed at %d on this cloud and cannot be changed", k, fixed))
		}
	}
	return limits, force, errors.Join(errs...)
}

// belowUsage refuses, as Nova does without force, a limit below what the
// project already uses and has reserved.
func (n *Nova) belowUsage(ctx context.Context, project string, limits quota.Amounts) error {
	used, reserved, err := n.Servers.Quota.Usage(ctx, quota.Scope{Project: project})
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range quota.Below(limits, used, reserved) {
		if k := string(o.Resource); o.Resource != quota.KeyPairs { // key_pairs are counted per user
			errs = append(errs, invalid(k, "Quota limit %d for %s must be greater than or equal to already used and reserved %d.", o.Limit, k, o.Used))
		}
	}
	return errors.Join(errs...)
}

// novaQuotaSets is who may read and change Nova's quota sets.
var novaQuotaSets = osapi.QuotaSets{Rule: "os_compute_api:os-quota-sets"}

// quotaAdmin returns the Servers' quota admin when the caller is a cloud
// admin and quotas can be changed.
func (n *Nova) quotaAdmin(w http.ResponseWriter, r *http.Request) (QuotaAdmin, bool) {
	return n.Servers.QuotaAdmin, novaQuotaSets.MayChange(w, r, caller(r).Admin, n.Servers.QuotaAdmin != nil)
}

// updateQuotaSet answers PUT /os-quota-sets/{project} (cloud admin only):
// the limits named change, the others keep their value; a limit below the
// project's usage needs "force": true, as in Nova. The answer is the whole
// quota set, without id, as Nova's.
func (n *Nova) updateQuotaSet(w http.ResponseWriter, r *http.Request) {
	qa, ok := n.quotaAdmin(w, r)
	if !ok {
		return
	}
	var body struct {
		QuotaSet map[string]json.RawMessage `json:"quota_set"`
	}
	if !decode(w, r, &body, `{"quota_set": {"instances": N, ...}}`) {
		return
	}
	if body.QuotaSet == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute quota_set. 'quota_set' is a required property")
		return
	}
	for k := range body.QuotaSet {
		if quotaKeyGone(r, k) {
			n.writeError(w, r, invalid(k, "Invalid input for field/attribute quota_set. Additional properties are not allowed ('%s' was unexpected)", k))
			return
		}
	}
	limits, force, err := parseQuotaSet(body.QuotaSet)
	project := chi.URLParam(r, "project")
	if err == nil && !force {
		err = n.belowUsage(r.Context(), project, limits)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	q, err := qa.Set(r.Context(), project, limits)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	n.Log.WithFields(logrus.Fields{"project": project, "limits": limits, "user": caller(r).User}).Info("quota set")
	view := quotaView(r, project, nil, nil, q, false)
	delete(view, "id")
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": view})
}

// deleteQuotaSet answers DELETE /os-quota-sets/{project} (cloud admin
// only): the project's quota is the defaults again. 202, as Nova.
func (n *Nova) deleteQuotaSet(w http.ResponseWriter, r *http.Request) {
	qa, ok := n.quotaAdmin(w, r)
	if !ok {
		return
	}
	project := chi.URLParam(r, "project")
	if err := qa.Reset(r.Context(), project); err != nil {
		n.writeError(w, r, err)
		return
	}
	n.Log.WithFields(logrus.Fields{"project": project, "user": caller(r).User}).Info("quota reset to defaults")
	w.WriteHeader(http.StatusAccepted)
}

// quotaDims are the stock policy's quota dimensions under Nova's (and
// Cinder's) names.
var quotaDims = map[string]string{"instances": "instances", "vcpus": "cores", "ram_mib": "ram", "volumes": "volumes", "disk_gib": "gigabytes"}

// quotaReason matches the stock policy's quota refusal.
var quotaReason = regexp.MustCompile(`project quota for (\w+) exceeded: (-?\d+) used \+ (\d+) requested > (-?\d+) allowed`)

// ErrQuotaExceeded: the request would take the project over its quota on
// every peer. It wraps peers.ErrCapacity; Nova answers 403.
var ErrQuotaExceeded = fmt.Errorf("compute: quota exceeded: %w", peers.ErrCapacity)

// QuotaRefusal turns a placement refusal the stock policy gave for quota
// (a request problem: every peer was denied with it) into Nova's
// TooManyInstances refusal: "Quota exceeded for instances: Requested 1,
// but already used 2 of 2 instances". The policy's reasons stay in the decision record. Any other error is returned as is. A custom policy that words its
// quota reasons differently keeps the No valid host answer.
func QuotaRefusal(err error) error {
	if !errors.Is(err, ErrNoValidHost) {
		return err
	}
	var overs, req, used, allowed []string
	seen := map[string]bool{}
	for _, m := range quotaReason.FindAllStringSubmatch(err.Error(), -1) {
		name, ok := quotaDims[m[1]]
		if !ok {
			name = m[1]
		}
		if seen[name] {
			continue // every peer repeats the request's problems
		}
		seen[name] = true
		overs, used, req, allowed = append(overs, name), append(used, m[2]), append(req, m[3]), append(allowed, m[4])
	}
	if len(overs) == 0 {
		return err
	}
	o := strings.Join(overs, ", ")
	msg := fmt.Sprintf("Quota exceeded for %s: Requested %s, but already used %s of %s %s", o,
		strings.Join(req, ", "), strings.Join(used, ", "), strings.Join(allowed, ", "), o)
	// Not wrapping err: the answer is the quota's (403), not no valid host's.
	return &Error{Message: msg, Err: ErrQuotaExceeded}
}
