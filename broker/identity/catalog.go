package identity

import "strings"

// Region is the one region cloudmux advertises.
const Region = "RegionOne"

// ServiceEntry names one service of the catalog and where it is mounted.
type ServiceEntry struct {
	Type, Name, Path string
}

// DefaultServices are the services the broker serves, and their paths. A
// service is listed only once it is served: clients probe every catalog
// entry, and one that answers nothing breaks them.
var DefaultServices = []ServiceEntry{
	{Type: "identity", Name: "keystone", Path: "/v3"},
	{Type: "compute", Name: "nova", Path: "/compute/v2.1"},
	{Type: "volumev3", Name: "cinderv3", Path: "/volume/v3"},
	{Type: "image", Name: "glance", Path: "/image"},
	// Unversioned, as Neutron's: clients add v2.0/ themselves.
	{Type: "network", Name: "neutron", Path: "/network"},
	// Per project, as Keystone substitutes %(project_id)s in a token's
	// catalog: the Swift account of the token's project.
	{Type: "object-store", Name: "swift", Path: "/swift/v1/AUTH_" + ProjectIDVar},
	// Per project, as Heat's endpoint: /orchestration/v1/PROJECT.
	{Type: "orchestration", Name: "heat", Path: "/orchestration/v1/" + ProjectIDVar},
	// The EC2 Query API, found through the catalog as OpenStack's ec2-api
	// is (the aws CLI signs the path it is given: with the slash).
	{Type: "ec2", Name: "ec2", Path: "/ec2/"},
	{Type: "cloudmux", Name: "cloudmux", Path: "/v1"},
}

// StaticCatalog returns a Catalog function listing services at base +
// path, each on the public, internal and admin interfaces (one broker
// endpoint serves all three).
func StaticCatalog(services []ServiceEntry) func(base string) []Service {
	return func(base string) []Service {
		out := make([]Service, 0, len(services))
		for _, s := range services {
			svc := Service{ID: s.Name, Type: s.Type, Name: s.Name}
			for _, iface := range []string{"public", "internal", "admin"} {
				svc.Endpoints = append(svc.Endpoints, Endpoint{
					ID: s.Name + "-" + iface, Interface: iface, Region: Region, RegionID: Region, URL: base + s.Path,
				})
			}
			out = append(out, svc)
		}
		return out
	}
}

// ProjectIDVar in an endpoint URL stands for the token's project ID, as
// in Keystone's endpoint templates; TenantIDVar is its older spelling,
// which endpoints registered for older clients still use.
const (
	ProjectIDVar = "%(project_id)s"
	TenantIDVar  = "%(tenant_id)s"
)

// ForProject returns cat with ProjectIDVar and TenantIDVar in its URLs
// replaced by project; without a project, the endpoints that need one
// are left out.
func ForProject(cat []Service, project string) []Service {
	out := make([]Service, 0, len(cat))
	for _, svc := range cat {
		eps := make([]Endpoint, 0, len(svc.Endpoints))
		for _, ep := range svc.Endpoints {
			if strings.Contains(ep.URL, ProjectIDVar) || strings.Contains(ep.URL, TenantIDVar) {
				if project == "" {
					continue
				}
				ep.URL = strings.NewReplacer(ProjectIDVar, project, TenantIDVar, project).Replace(ep.URL)
			}
			eps = append(eps, ep)
		}
		if len(eps) > 0 {
			svc.Endpoints = eps
			out = append(out, svc)
		}
	}
	return out
}
