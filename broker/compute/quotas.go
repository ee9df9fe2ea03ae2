package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// DefaultQuota is what a project may use until a cloud admin sets its
// quota: Nova's defaults ([quota] instances 10, cores 20, ram 51200 MiB)
// and Cinder's (quota_volumes 10, quota_gigabytes 1000). Every field is
// set: the placement policy reads a 0 limit as "nothing allowed".
var DefaultQuota = policy.Usage{Instances: 10, VCPUs: 20, RAMMiB: 51200, Volumes: 10, DiskGiB: 1000}

// maxQuota is the largest limit Nova accepts (its database's MAX_INT).
const maxQuota = math.MaxInt32

// quotaKeys are the quota_set keys a cloud admin may set, and the
// policy.Usage field each limits. volumes and gigabytes are Cinder's names:
// the broker keeps one quota record per project for every service.
var quotaKeys = map[string]func(*policy.Usage) *int{
	"instances": func(u *policy.Usage) *int { return &u.Instances },
	"cores":     func(u *policy.Usage) *int { return &u.VCPUs },
	"ram":       func(u *policy.Usage) *int { return &u.RAMMiB },
	"volumes":   func(u *policy.Usage) *int { return &u.Volumes },
	"gigabytes": func(u *policy.Usage) *int { return &u.DiskGiB },
}

// fixedQuotas are Nova's other quota_set keys, which the broker does not
// vary by project (see limits.go). A client that sends one back with its
// current value (a read-modify-write of the whole set) is not refused.
var fixedQuotas = map[string]int{
	"metadata_items": maxMetadataItems, "key_pairs": maxKeypairs, "server_groups": maxServerGroups,
	"server_group_members": maxGroupMembers, "injected_files": maxInjectedFiles,
	"injected_file_content_bytes": maxInjectedBytes, "injected_file_path_bytes": maxInjectedPath,
	"security_groups": maxSecGroups, "security_group_rules": maxSecGroupRules,
	"fixed_ips": unlimited, "floating_ips": unlimited,
}

// QuotaStore is the part of registry.Store StoreQuotas uses.
type QuotaStore interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
}

var _ QuotaStore = registry.Store(nil)

// QuotaAdmin is Quotas a cloud admin can change through Nova's
// os-quota-sets (PUT sets, DELETE resets to the defaults). Without it
// os-quota-sets is read only.
type QuotaAdmin interface {
	Quotas
	// Defaults is the quota of a project nobody set one for.
	Defaults() policy.Usage
	// SetQuota changes the named limits (quotaKeys' names) of project
	// and returns its whole quota.
	SetQuota(ctx context.Context, project string, limits map[string]int) (policy.Usage, error)
	// ResetQuota forgets project's limits: the defaults apply again.
	ResetQuota(ctx context.Context, project string) error
}

var _ QuotaAdmin = (*StoreQuotas)(nil)

// StoreQuotas keeps per-project quotas in the registry Store, at
// quotas/<project>, as the limits an admin set ({"instances": 2}); a
// limit never set is Default's, so a changed default reaches every project
// that did not override it (Nova's rule). -1 is unlimited: the stock
// policy checks only limits >= 0, so it is passed through as is.
type StoreQuotas struct {
	Store QuotaStore
	// Default is the quota of limits never set; nil is DefaultQuota.
	Default *policy.Usage
}

// NewStoreQuotas returns quotas over store with DefaultQuota.
func NewStoreQuotas(store QuotaStore) *StoreQuotas { return &StoreQuotas{Store: store} }

func quotaKey(project string) (string, error) {
	key := "quotas/" + project
	if project == "" || strings.Contains(project, "/") {
		return "", fmt.Errorf("%w: project %q", ErrInvalid, project)
	}
	if err := registry.ValidateKey(key); err != nil {
		return "", fmt.Errorf("%w: project %q: %v", ErrInvalid, project, err)
	}
	return key, nil
}

// Defaults implements QuotaAdmin.
func (q *StoreQuotas) Defaults() policy.Usage {
	if q.Default != nil {
		return *q.Default
	}
	return DefaultQuota
}

// read returns the limits stored for project and the record's index (0
// when there is none).
func (q *StoreQuotas) read(ctx context.Context, key string) (map[string]int, uint64, error) {
	kv, err := q.Store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return map[string]int{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading quota %s: %w", key, err)
	}
	set := map[string]int{}
	if err := json.Unmarshal(kv.Value, &set); err != nil {
		return nil, 0, fmt.Errorf("decoding quota %s: %w", key, err)
	}
	return set, kv.ModifyIndex, nil
}

// apply lays set over the defaults.
func (q *StoreQuotas) apply(set map[string]int) policy.Usage {
	u := q.Defaults()
	for k, v := range set {
		if f, ok := quotaKeys[k]; ok { // a key a later version dropped is ignored
			*f(&u) = v
		}
	}
	return u
}

// Quota implements Quotas: the project's limits over the defaults.
func (q *StoreQuotas) Quota(ctx context.Context, project string) (*policy.Usage, error) {
	key, err := quotaKey(project)
	if err != nil {
		return nil, err
	}
	set, _, err := q.read(ctx, key)
	if err != nil {
		return nil, err
	}
	u := q.apply(set)
	return &u, nil
}

// SetQuota implements QuotaAdmin. Concurrent admins' changes to different
// keys both land (compare-and-swap, retried).
func (q *StoreQuotas) SetQuota(ctx context.Context, project string, limits map[string]int) (policy.Usage, error) {
	key, err := quotaKey(project)
	if err != nil {
		return policy.Usage{}, err
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(limits)) {
		if _, ok := quotaKeys[k]; !ok {
			errs = append(errs, invalid(k, "Unknown quota resource %s", k))
		} else if v := limits[k]; v < unlimited || v > maxQuota {
			errs = append(errs, invalid(k, "Invalid input for field/attribute %s. Value: %d. It must be between -1 and %d", k, v, maxQuota))
		}
	}
	if len(errs) > 0 {
		return policy.Usage{}, errors.Join(errs...)
	}
	for {
		set, index, err := q.read(ctx, key)
		if err != nil {
			return policy.Usage{}, err
		}
		maps.Copy(set, limits)
		b, err := json.Marshal(set)
		if err != nil {
			return policy.Usage{}, err
		}
		_, err = q.Store.CAS(ctx, key, b, index)
		if errors.Is(err, registry.ErrConflict) {
			if ctx.Err() != nil {
				return policy.Usage{}, ctx.Err()
			}
			continue // another admin wrote first: merge over theirs
		}
		if err != nil {
			return policy.Usage{}, fmt.Errorf("writing quota %s: %w", key, err)
		}
		return q.apply(set), nil
	}
}

// ResetQuota implements QuotaAdmin.
func (q *StoreQuotas) ResetQuota(ctx context.Context, project string) error {
	key, err := quotaKey(project)
	if err != nil {
		return err
	}
	if err := q.Store.Delete(ctx, key); err != nil {
		return fmt.Errorf("deleting quota %s: %w", key, err)
	}
	return nil
}

// parseQuotaSet reads a PUT /os-quota-sets body's quota_set: every key a
// settable limit (an integer, or a string of one, from -1 to maxQuota),
// a fixed one at its value, or "force" (set a limit below what the project
// already uses). It returns every problem.
func parseQuotaSet(raw map[string]json.RawMessage) (limits map[string]int, force bool, err error) {
	limits = map[string]int{}
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
		_, settable := quotaKeys[k]
		fixed, isFixed := fixedQuotas[k]
		if !settable && !isFixed {
			errs = append(errs, invalid(k, "Invalid input for field/attribute quota_set. Additional properties are not allowed (%q was unexpected)", k))
			continue
		}
		n, ok := quotaInt(v)
		if !ok || n < unlimited || n > maxQuota {
			errs = append(errs, invalid(k, "Invalid input for field/attribute %s. Value: %s. It must be an integer from -1 (unlimited) to %d", k, v, maxQuota))
			continue
		}
		switch {
		case settable:
			limits[k] = n
		case n != fixed:
			errs = append(errs, invalid(k, "Quota %s is fixed at %d on this cloud and cannot be changed", k, fixed))
		}
	}
	return limits, force, errors.Join(errs...)
}

// belowUsage refuses, as Nova does without force, a limit below what the
// project already uses (counted over the peers that answered).
func (n *Nova) belowUsage(ctx context.Context, project string, limits map[string]int) error {
	u, _, err := n.Servers.Usage(ctx, Caller{Project: project, Admin: true})
	if err != nil {
		return err
	}
	used := map[string]int{"instances": u.Instances, "cores": u.VCPUs, "ram": u.RAMMiB, "volumes": u.Volumes, "gigabytes": u.DiskGiB}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(limits)) {
		if l := limits[k]; l >= 0 && l < used[k] {
			errs = append(errs, invalid(k, "Quota limit %d for %s must be greater than or equal to already used and reserved %d.", l, k, used[k]))
		}
	}
	return errors.Join(errs...)
}

// quotaInt reads a JSON integer or a string holding one (Nova takes both).
func quotaInt(v json.RawMessage) (int, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		s = string(v)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// quotaAdmin returns the Servers' quotas when an admin can change them.
func (n *Nova) quotaAdmin(w http.ResponseWriter, r *http.Request) (QuotaAdmin, bool) {
	if !caller(r).Admin {
		osapi.Fault(w, r, http.StatusForbidden, fmt.Sprintf("Policy doesn't allow os_compute_api:os-quota-sets:%s to be performed.",
			map[string]string{http.MethodPut: "update", http.MethodDelete: "delete"}[r.Method]))
		return nil, false
	}
	qa, ok := n.Servers.Quotas.(QuotaAdmin)
	if !ok {
		osapi.Fault(w, r, http.StatusNotImplemented, "Quotas are not configurable on this cloud.")
		return nil, false
	}
	return qa, true
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
	limits, force, err := parseQuotaSet(body.QuotaSet)
	project := chi.URLParam(r, "project")
	if err == nil && !force {
		err = n.belowUsage(r.Context(), project, limits)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	q, err := qa.SetQuota(r.Context(), project, limits)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	n.Log.WithFields(logrus.Fields{"project": project, "limits": limits, "user": caller(r).User}).Info("quota set")
	view := quotaView(project, policy.Usage{}, q, false)
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
	if err := qa.ResetQuota(r.Context(), project); err != nil {
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
