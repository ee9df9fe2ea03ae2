package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// QuotaLimits is what Keystone's unified limits are made of: the quota
// ledger's own limit records (quota.Limits), so a registered limit is a
// dimension's default for every project that set none, and a limit is a
// project's own, the same records Nova's and Cinder's os-quota-sets and
// Neutron's quotas read and write. There is one truth.
type QuotaLimits interface {
	ListDefaults() []quota.Default
	SetDefault(ctx context.Context, r quota.Resource, limit *int, description *string, create bool) (quota.Default, error)
	UnsetDefault(ctx context.Context, r quota.Resource) error
	ProjectLimits(ctx context.Context, project string) ([]quota.Limit, error)
	AllLimits(ctx context.Context) ([]quota.Limit, error)
	LimitByID(ctx context.Context, id string) (quota.Limit, error)
	SetLimit(ctx context.Context, project string, r quota.Resource, limit *int, description *string, create bool) (quota.Limit, error)
	Unset(ctx context.Context, project string, dims ...quota.Resource) (quota.Amounts, error)
}

var _ QuotaLimits = (*quota.Limits)(nil)

// unifiedResource is a quota dimension under the service type and the
// resource name Nova, Cinder and Neutron use with unified limits.
type unifiedResource struct {
	serviceType, name string
	dim               quota.Resource
}

// unifiedResources are every dimension the ledger enforces.
var unifiedResources = []unifiedResource{
	{"compute", "servers", quota.Instances},
	{"compute", "class:VCPU", quota.Cores},
	{"compute", "class:MEMORY_MB", quota.RAM},
	{"compute", "server_key_pairs", quota.KeyPairs},
	{"compute", "server_groups", quota.ServerGroups},
	{"compute", "server_group_members", quota.ServerGroupMembers},
	{"volumev3", "volumes", quota.Volumes},
	{"volumev3", "gigabytes", quota.Gigabytes},
	{"volumev3", "snapshots", quota.Snapshots},
	{"network", "network", quota.Networks},
	{"network", "subnet", quota.Subnets},
	{"network", "port", quota.Ports},
	{"network", "router", quota.Routers},
	{"network", "floatingip", quota.FloatingIPs},
	{"network", "security_group", quota.SecurityGroups},
	{"network", "security_group_rule", quota.SecurityGroupRules},
}

// notEnforced says why a resource name the upstream services know is
// refused: the broker does not enforce it per project.
var notEnforced = map[string]string{
	"server_metadata_items":              "a server's metadata is capped at 128 items for every project",
	"server_injected_files":              "injected files are capped alike for every project",
	"server_injected_file_content_bytes": "injected files are capped alike for every project",
	"server_injected_file_path_bytes":    "injected files are capped alike for every project",
	"backups":                            "volume backups are not built",
	"backup_gigabytes":                   "volume backups are not built",
	"groups":                             "volume groups are not built",
	"per_volume_gigabytes":               "the size of one volume is not limited per project",
}

// limitServiceID is the catalog service whose limits the broker enforces
// for a service type: the broker's own seeded service.
func limitServiceID(serviceType string) string {
	for _, s := range DefaultServices {
		if s.Type == serviceType {
			return s.Name
		}
	}
	return ""
}

func unifiedOf(dim quota.Resource) (unifiedResource, bool) {
	for _, u := range unifiedResources {
		if u.dim == dim {
			return u, true
		}
	}
	return unifiedResource{}, false
}

// limitTarget resolves a limit's service_id, region_id and resource_name
// to the dimension the ledger enforces, or says why it cannot.
func (k *Keystone) limitTarget(ctx context.Context, serviceID, regionID, name string) (quota.Resource, error) {
	if regionID != "" {
		return "", &registry.FieldError{Field: "region_id", Reason: "limits are not per region: they hold in the broker's one region (" + Region + "); omit region_id"}
	}
	if serviceID == "" {
		return "", &registry.FieldError{Field: "service_id", Reason: "required"}
	}
	svc, err := k.Dir.GetService(ctx, serviceID)
	if err != nil {
		return "", &registry.FieldError{Field: "service_id", Reason: fmt.Sprintf("no service %s", serviceID)}
	}
	served := limitServiceID(svc.Type)
	var names []string
	for _, u := range unifiedResources {
		if u.serviceType == svc.Type {
			if u.name == name {
				if served != svc.ID {
					return "", &registry.FieldError{Field: "service_id", Reason: fmt.Sprintf("the broker enforces %s limits as service %s", svc.Type, served)}
				}
				return u.dim, nil
			}
			names = append(names, u.name)
		}
	}
	if len(names) == 0 {
		return "", &registry.FieldError{Field: "service_id", Reason: fmt.Sprintf("the broker enforces no limits of service type %s (only compute, volumev3 and network)", svc.Type)}
	}
	why := "nothing enforces it"
	if w, ok := notEnforced[name]; ok {
		why = w
	}
	if strings.HasPrefix(name, "class:") {
		why = "the broker counts no other resource class"
	}
	return "", &registry.FieldError{Field: "resource_name", Reason: fmt.Sprintf("%s is not enforced (%s); %s enforces %s", name, why, svc.Type, strings.Join(names, ", "))}
}

// limitFilter is the query of a limits listing.
type limitFilter struct {
	serviceID, regionID, resourceName, projectID string
	domain                                       bool // domain_id asked: no domain limits exist
}

func (f limitFilter) keep(u unifiedResource, project string) bool {
	return !f.domain && f.regionID == "" &&
		(f.serviceID == "" || f.serviceID == limitServiceID(u.serviceType)) &&
		(f.resourceName == "" || f.resourceName == u.name) &&
		(f.projectID == "" || f.projectID == project)
}

// limitFromQuota renders a project limit as Keystone does.
func limitView(base string, l quota.Limit) map[string]any {
	u, _ := unifiedOf(l.Resource)
	return map[string]any{"id": l.ID, "project_id": l.Project, "domain_id": nil, "region_id": nil,
		"service_id": limitServiceID(u.serviceType), "resource_name": u.name, "resource_limit": l.Limit,
		"description": nullable(l.Description), "links": map[string]string{"self": base + "/v3/limits/" + l.ID}}
}

func registeredLimitView(base string, d quota.Default) map[string]any {
	u, _ := unifiedOf(d.Resource)
	id := quota.DefaultID(d.Resource)
	return map[string]any{"id": id, "region_id": nil, "service_id": limitServiceID(u.serviceType),
		"resource_name": u.name, "default_limit": d.Limit, "description": nullable(d.Description),
		"links": map[string]string{"self": base + "/v3/registered_limits/" + id}}
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// limitErr maps the ledger's refusals to Keystone's statuses.
func limitErr(err error) error {
	switch {
	case errors.Is(err, quota.ErrExists):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, quota.ErrNotSet):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.Is(err, quota.ErrInvalid):
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

// defaultByID finds a registered limit by its ID.
func (k *Keystone) defaultByID(id string) (quota.Default, error) {
	for _, d := range k.Limits.ListDefaults() {
		if quota.DefaultID(d.Resource) == id {
			return d, nil
		}
	}
	return quota.Default{}, errNotFoundf("registered limit %s", id)
}

// visibleLimits lists the project limits t may read under f: every one
// for an identity admin, a project's own for its members, a domain's
// projects' for a domain-scoped token.
func (k *Keystone) visibleLimits(ctx context.Context, t Token, f limitFilter) ([]quota.Limit, error) {
	var all []quota.Limit
	var err error
	switch {
	case t.IdentityAdmin():
		all, err = k.Limits.AllLimits(ctx)
	case t.ProjectID != "":
		all, err = k.Limits.ProjectLimits(ctx, t.ProjectID)
	case t.DomainID != "":
		all, err = k.Limits.AllLimits(ctx)
		all = slices.DeleteFunc(all, func(l quota.Limit) bool { return !k.inTokenDomain(ctx, t, l.Project) })
	}
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, l := range all {
		if u, ok := unifiedOf(l.Resource); ok && f.keep(u, l.Project) {
			out = append(out, l)
		}
	}
	return out, nil
}

func (k *Keystone) inTokenDomain(ctx context.Context, t Token, project string) bool {
	p, err := k.Dir.GetProject(ctx, project)
	return err == nil && t.DomainID != "" && p.DomainID == t.DomainID
}

// mayReadLimit: an identity admin, the limit's project, or its domain.
func (k *Keystone) mayReadLimit(ctx context.Context, t Token, l quota.Limit) bool {
	return t.IdentityAdmin() || (t.ProjectID != "" && t.ProjectID == l.Project) || k.inTokenDomain(ctx, t, l.Project)
}
