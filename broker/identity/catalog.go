package identity

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
