package compute

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/policy"
)

// Nova's fixed limits, which the broker does not vary by project.
const (
	maxKeypairs       = 100
	maxServerGroups   = 10
	maxGroupMembers   = 10
	maxSecGroups      = 10
	maxSecGroupRules  = 20
	maxInjectedFiles  = 5
	maxInjectedBytes  = 10240
	maxInjectedPath   = 255
	unlimited         = -1
	maxImageMetaItems = 128
)

// unlimitedQuota is what a project may use without Servers.Quotas.
var unlimitedQuota = policy.Usage{VCPUs: unlimited, RAMMiB: unlimited, DiskGiB: unlimited, Instances: unlimited, Volumes: unlimited}

// usageAndQuota is what c's project uses, summed over the peers that
// answered (the others named in the partial header), and its quota.
func (n *Nova) usageAndQuota(w http.ResponseWriter, r *http.Request, c Caller) (policy.Usage, policy.Usage, bool) {
	u, failed, err := n.Servers.Usage(r.Context(), c)
	if err != nil {
		n.writeError(w, r, err)
		return u, policy.Usage{}, false
	}
	q := unlimitedQuota
	if n.Servers.Quotas != nil {
		pq, err := n.Servers.Quotas.Quota(r.Context(), c.Project)
		if err != nil {
			n.writeError(w, r, err)
			return u, q, false
		}
		if pq != nil {
			q = *pq
		}
	}
	osapi.FlagPartial(w, r, n.Log, "usage", failed, nil)
	return u, q, true
}

// limits answers GET /limits: what the project uses and its quota from
// Servers.Quotas; without one every maximum is -1 (unlimited), as Nova
// shows an unlimited quota, and placement still refuses what no peer can
// hold.
func (n *Nova) limits(w http.ResponseWriter, r *http.Request) {
	u, q, ok := n.usageAndQuota(w, r, caller(r))
	if !ok {
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]any{
		"maxTotalCores": q.VCPUs, "maxTotalInstances": q.Instances, "maxTotalRAMSize": q.RAMMiB,
		"totalCoresUsed": u.VCPUs, "totalInstancesUsed": u.Instances, "totalRAMUsed": u.RAMMiB,
		"maxServerMeta": maxMetadataItems, "maxImageMeta": maxImageMetaItems, "maxPersonality": maxInjectedFiles, "maxPersonalitySize": maxInjectedBytes,
		"maxTotalKeypairs": maxKeypairs, "maxServerGroups": maxServerGroups, "maxServerGroupMembers": maxGroupMembers, "totalServerGroupsUsed": 0,
		"maxSecurityGroups": maxSecGroups, "maxSecurityGroupRules": maxSecGroupRules, "totalSecurityGroupsUsed": 0,
		"maxTotalFloatingIps": unlimited, "totalFloatingIpsUsed": 0,
	}}})
}

// quotaView is Nova's quota_set: limits, or with detail each as
// {in_use, limit, reserved}.
func quotaView(project string, u, q policy.Usage, detail bool) map[string]any {
	used := map[string]int{"cores": u.VCPUs, "instances": u.Instances, "ram": u.RAMMiB}
	limits := map[string]int{
		"cores": q.VCPUs, "instances": q.Instances, "ram": q.RAMMiB, "metadata_items": maxMetadataItems,
		"key_pairs": maxKeypairs, "server_groups": maxServerGroups, "server_group_members": maxGroupMembers,
		"injected_files": maxInjectedFiles, "injected_file_content_bytes": maxInjectedBytes, "injected_file_path_bytes": maxInjectedPath,
		"security_groups": maxSecGroups, "security_group_rules": maxSecGroupRules, "fixed_ips": unlimited, "floating_ips": unlimited,
	}
	out := map[string]any{"id": project}
	for k, l := range limits {
		if detail {
			out[k] = map[string]int{"in_use": used[k], "limit": l, "reserved": 0}
		} else {
			out[k] = l
		}
	}
	return out
}

// quotaSet answers GET /os-quota-sets/{project} (PUT and DELETE, in
// quotas.go, need Servers.Quotas to be a QuotaAdmin). A project reads its own; a cloud
// admin any.
func (n *Nova) quotaSet(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, project := caller(r), chi.URLParam(r, "project")
		if project != c.Project {
			if !c.Admin {
				osapi.Fault(w, r, http.StatusForbidden, "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.")
				return
			}
			c = Caller{Project: project, Admin: true}
		}
		u, q, ok := n.usageAndQuota(w, r, c)
		if !ok {
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(project, u, q, detail)})
	}
}

// quotaDefaults answers GET /os-quota-sets/{project}/defaults: the quota
// of a project no admin set one for (unlimited without QuotaAdmin).
func (n *Nova) quotaDefaults(w http.ResponseWriter, r *http.Request) {
	d := unlimitedQuota
	if qa, ok := n.Servers.Quotas.(QuotaAdmin); ok {
		d = qa.Defaults()
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(chi.URLParam(r, "project"), policy.Usage{}, d, false)})
}
