package compute

import (
	"maps"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
)

// Nova's fixed limits, which the broker does not vary by project.
const (
	maxKeypairs       = 100
	maxSecGroups      = 10
	maxSecGroupRules  = 20
	maxInjectedFiles  = 5
	maxInjectedBytes  = 10240
	maxInjectedPath   = 255
	unlimited         = -1
	maxImageMetaItems = 128
)

// usageAndQuota is what c's project uses and has reserved, and its
// quota, from the quota ledger: one record each, never a count over the
// peers. key_pairs are the caller's own (Nova counts them per user).
func (n *Nova) usageAndQuota(w http.ResponseWriter, r *http.Request, c Caller) (used, reserved, limits quota.Amounts, ok bool) {
	ctx := r.Context()
	used, reserved, err := n.Servers.Quota.Usage(ctx, quota.Scope{Project: c.Project})
	if err == nil {
		limits, err = n.Servers.Quota.Quota(ctx, c.Project)
	}
	if err == nil && c.User != "" {
		var ku, kr quota.Amounts
		if ku, kr, err = n.Servers.Quota.Usage(ctx, quota.Scope{Project: c.Project, User: c.User}); err == nil {
			used, reserved = used.Clone(), reserved.Clone()
			used[quota.KeyPairs], reserved[quota.KeyPairs] = ku[quota.KeyPairs], kr[quota.KeyPairs]
		}
	}
	if err != nil {
		n.writeError(w, r, err)
		return nil, nil, nil, false
	}
	return used, reserved, limits, true
}

// limits answers GET /limits: the project's quota and what it uses.
func (n *Nova) limits(w http.ResponseWriter, r *http.Request) {
	u, _, q, ok := n.usageAndQuota(w, r, caller(r))
	if !ok {
		return
	}
	abs := map[string]any{
		"maxTotalCores": q[quota.Cores], "maxTotalInstances": q[quota.Instances], "maxTotalRAMSize": q[quota.RAM],
		"totalCoresUsed": u[quota.Cores], "totalInstancesUsed": u[quota.Instances], "totalRAMUsed": u[quota.RAM],
		"maxServerMeta": maxMetadataItems, "maxTotalKeypairs": q[quota.KeyPairs], "maxServerGroups": q[quota.ServerGroups],
		"maxServerGroupMembers": q[quota.ServerGroupMembers], "totalServerGroupsUsed": u[quota.ServerGroups],
	}
	if !at(r, "2.36") { // the network limits went with Nova's network proxies
		abs["maxSecurityGroups"], abs["maxSecurityGroupRules"] = q[quota.SecurityGroups], q[quota.SecurityGroupRules]
		abs["totalSecurityGroupsUsed"], abs["maxTotalFloatingIps"], abs["totalFloatingIpsUsed"] = u[quota.SecurityGroups], unlimited, 0
	}
	if !at(r, "2.39") {
		abs["maxImageMeta"] = maxImageMetaItems
	}
	if !at(r, "2.57") { // personality went at 2.57
		abs["maxPersonality"], abs["maxPersonalitySize"] = maxInjectedFiles, maxInjectedBytes
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
}

// quotaKeysGone are the quota_set keys a microversion removed: the
// network ones at 2.36, the injected-file ones at 2.57.
func quotaKeyGone(r *http.Request, k string) bool {
	switch k {
	case "security_groups", "security_group_rules", "floating_ips", "fixed_ips", "networks":
		return at(r, "2.36")
	case "injected_files", "injected_file_content_bytes", "injected_file_path_bytes":
		return at(r, "2.57")
	}
	return false
}

// quotaView is Nova's quota_set: limits, or with detail each as
// {in_use, limit, reserved}.
func quotaView(r *http.Request, project string, used, reserved, q quota.Amounts, detail bool) map[string]any {
	limits := map[string]int{}
	for k, dim := range novaQuotas {
		limits[k] = q[dim]
	}
	maps.Copy(limits, fixedQuotas)
	out := map[string]any{"id": project}
	for k, l := range limits {
		if quotaKeyGone(r, k) {
			continue
		}
		if detail {
			dim := novaQuotas[k]
			out[k] = map[string]int{"in_use": used[dim], "limit": l, "reserved": reserved[dim]}
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
		if !novaQuotaSets.MayRead(w, r, project, c.Project, c.Admin) {
			return
		}
		if project != c.Project {
			c = Caller{Project: project, Admin: true}
		}
		u, res, q, ok := n.usageAndQuota(w, r, c)
		if !ok {
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(r, project, u, res, q, detail)})
	}
}

// quotaDefaults answers GET /os-quota-sets/{project}/defaults: the quota
// of a project no admin set one for (unlimited without QuotaAdmin).
func (n *Nova) quotaDefaults(w http.ResponseWriter, r *http.Request) {
	d := quota.Defaults
	if n.Servers.QuotaAdmin != nil {
		d = n.Servers.QuotaAdmin.Defaults()
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": quotaView(r, chi.URLParam(r, "project"), nil, nil, d, false)})
}
