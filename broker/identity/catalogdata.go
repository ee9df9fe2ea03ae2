package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// The catalog as data, as Keystone keeps it: regions, services and
// endpoints are records (identity/regions/<id>, identity/services/<id>,
// identity/endpoints/<id>) an admin lists and changes, and every token's
// catalog is built from them (from memory: the cache follows the three
// prefixes). The broker's own services are seeded rows whose URLs start
// with BaseURLVar, which stands for the address a request reached the
// broker at; an admin may add endpoints of any other service, with any URL.

const (
	regionsPrefix   = "identity/regions/"
	servicesPrefix  = "identity/services/"
	endpointsPrefix = "identity/endpoints/"
	// catalogSeeded marks each broker service seeded once, so one an
	// admin deleted stays deleted across restarts.
	catalogSeeded = "identity/bootstrap/catalog/"
	// BaseURLVar in an endpoint URL stands for the scheme and host the
	// request reached the broker at (the broker's own endpoints).
	BaseURLVar = "%(base_url)s"
)

// Interfaces are the endpoint interfaces Keystone knows.
var Interfaces = []string{"public", "internal", "admin"}

// RegionRecord is a Keystone region.
type RegionRecord struct {
	ID             string `json:"id"`
	Description    string `json:"description"`
	ParentRegionID string `json:"parent_region_id,omitempty"`
}

// ServiceRecord is a Keystone service.
type ServiceRecord struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// EndpointRecord is a Keystone endpoint.
type EndpointRecord struct {
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	Interface string `json:"interface"`
	RegionID  string `json:"region_id,omitempty"`
	URL       string `json:"url"`
	Enabled   bool   `json:"enabled"`
	// Name and Description are kept and shown, as Keystone keeps an
	// endpoint's extra attributes (gophercloud sends them).
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// SeedCatalog writes the region and the broker's services, each with a
// public, internal and admin endpoint at BaseURLVar + its path, unless it
// was seeded before. Replicas seeding at once agree: every write is
// create-only.
func (d *Directory) SeedCatalog(ctx context.Context, services []ServiceEntry) error {
	if err := d.putNew(ctx, regionsPrefix+Region, RegionRecord{ID: Region}); err != nil {
		return fmt.Errorf("seed region: %w", err)
	}
	for _, s := range services {
		if _, err := d.store.Get(ctx, catalogSeeded+s.Name); err == nil {
			continue
		} else if !errors.Is(err, registry.ErrNotFound) {
			return err
		}
		if err := d.putNew(ctx, servicesPrefix+s.Name, ServiceRecord{ID: s.Name, Type: s.Type, Name: s.Name, Enabled: true}); err != nil {
			return fmt.Errorf("seed service %s: %w", s.Name, err)
		}
		for _, iface := range Interfaces {
			ep := EndpointRecord{ID: s.Name + "-" + iface, ServiceID: s.Name, Interface: iface, RegionID: Region, URL: BaseURLVar + s.Path, Enabled: true}
			if err := d.putNew(ctx, endpointsPrefix+ep.ID, ep); err != nil {
				return fmt.Errorf("seed endpoint %s: %w", ep.ID, err)
			}
		}
		if err := d.putNew(ctx, catalogSeeded+s.Name, struct{}{}); err != nil {
			return err
		}
	}
	return nil
}

// putNew writes a record that must not exist; one that does (another
// replica's) is kept.
func (d *Directory) putNew(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := d.store.CAS(ctx, key, raw, 0); err != nil && !errors.Is(err, registry.ErrConflict) {
		return err
	}
	return nil
}

// Catalog builds the token catalog from the records: enabled services
// with their enabled endpoints, URLs under base for the broker's own.
func (d *Directory) Catalog(base string) []Service {
	ctx := context.Background()
	services, err := listJSON[ServiceRecord](ctx, d.store, servicesPrefix)
	if err != nil {
		return nil
	}
	endpoints, err := listJSON[EndpointRecord](ctx, d.store, endpointsPrefix)
	if err != nil {
		return nil
	}
	byService := map[string][]Endpoint{}
	for _, ep := range endpoints {
		if ep.Enabled {
			byService[ep.ServiceID] = append(byService[ep.ServiceID], Endpoint{ID: ep.ID, Interface: ep.Interface,
				Region: ep.RegionID, RegionID: ep.RegionID, URL: ExpandURL(ep.URL, base)})
		}
	}
	out := make([]Service, 0, len(services))
	for _, s := range services {
		if eps := byService[s.ID]; s.Enabled && len(eps) > 0 {
			sort.Slice(eps, func(i, j int) bool { return eps[i].ID < eps[j].ID })
			out = append(out, Service{ID: s.ID, Type: s.Type, Name: s.Name, Endpoints: eps})
		}
	}
	return out
}

// ExpandURL replaces BaseURLVar in an endpoint URL with base.
func ExpandURL(u, base string) string { return strings.ReplaceAll(u, BaseURLVar, base) }

// CreateRegion adds a region; an empty ID gets a new one.
func (d *Directory) CreateRegion(ctx context.Context, r RegionRecord) (RegionRecord, error) {
	if r.ID == "" {
		r.ID = NewID()
	}
	if err := validName("region.id", r.ID); err != nil || strings.ContainsAny(r.ID, "/") {
		return RegionRecord{}, &registry.FieldError{Field: "region.id", Reason: "must be 1-255 characters without '/' or control characters"}
	}
	if r.ParentRegionID != "" {
		if _, err := d.GetRegion(ctx, r.ParentRegionID); err != nil {
			return RegionRecord{}, &registry.FieldError{Field: "region.parent_region_id", Reason: fmt.Sprintf("no region %q", r.ParentRegionID)}
		}
	}
	return r, createJSON(ctx, d.store, regionsPrefix+r.ID, "region", r.ID, r)
}

// GetRegion finds a region.
func (d *Directory) GetRegion(ctx context.Context, id string) (RegionRecord, error) {
	if strings.Contains(id, "/") {
		return RegionRecord{}, fmt.Errorf("%w region %s", ErrNotFound, id)
	}
	return getJSON[RegionRecord](ctx, d.store, regionsPrefix+id, "region", id)
}

// ListRegions lists every region.
func (d *Directory) ListRegions(ctx context.Context) ([]RegionRecord, error) {
	return listJSON[RegionRecord](ctx, d.store, regionsPrefix)
}

// UpdateRegion changes a region's description or parent.
func (d *Directory) UpdateRegion(ctx context.Context, id string, change func(*RegionRecord)) (RegionRecord, error) {
	return updateJSON(ctx, d, regionsPrefix, "region", id, change, func(cur, next *RegionRecord) error {
		next.ID = cur.ID
		if next.ParentRegionID == "" {
			return nil
		}
		if next.ParentRegionID == id {
			return &registry.FieldError{Field: "region.parent_region_id", Reason: "a region is not its own parent"}
		}
		_, err := d.GetRegion(ctx, next.ParentRegionID)
		if err != nil {
			return &registry.FieldError{Field: "region.parent_region_id", Reason: fmt.Sprintf("no region %q", next.ParentRegionID)}
		}
		return nil
	})
}

// DeleteRegion removes a region no endpoint or child region names.
func (d *Directory) DeleteRegion(ctx context.Context, id string) error {
	if _, err := d.GetRegion(ctx, id); err != nil {
		return err
	}
	regions, err := d.ListRegions(ctx)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(regions, func(r RegionRecord) bool { return r.ParentRegionID == id }) {
		return fmt.Errorf("%w: region %s has child regions", ErrConflict, id)
	}
	eps, err := d.ListEndpoints(ctx)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(eps, func(e EndpointRecord) bool { return e.RegionID == id }) {
		return fmt.Errorf("%w: region %s has endpoints", ErrConflict, id)
	}
	return d.store.Delete(ctx, regionsPrefix+id)
}

// CreateService adds a service.
func (d *Directory) CreateService(ctx context.Context, s ServiceRecord) (ServiceRecord, error) {
	if s.Type == "" || len(s.Type) > 255 {
		return ServiceRecord{}, &registry.FieldError{Field: "service.type", Reason: "is required (1-255 characters)"}
	}
	s.ID = NewID()
	return s, createJSON(ctx, d.store, servicesPrefix+s.ID, "service", s.ID, s)
}

// GetService finds a service.
func (d *Directory) GetService(ctx context.Context, id string) (ServiceRecord, error) {
	if strings.Contains(id, "/") {
		return ServiceRecord{}, fmt.Errorf("%w service %s", ErrNotFound, id)
	}
	return getJSON[ServiceRecord](ctx, d.store, servicesPrefix+id, "service", id)
}

// ListServices lists every service.
func (d *Directory) ListServices(ctx context.Context) ([]ServiceRecord, error) {
	return listJSON[ServiceRecord](ctx, d.store, servicesPrefix)
}

// UpdateService changes a service; the ID is kept.
func (d *Directory) UpdateService(ctx context.Context, id string, change func(*ServiceRecord)) (ServiceRecord, error) {
	return updateJSON(ctx, d, servicesPrefix, "service", id, change, func(cur, next *ServiceRecord) error {
		next.ID = cur.ID
		if next.Type == "" {
			return &registry.FieldError{Field: "service.type", Reason: "may not be empty"}
		}
		return nil
	})
}

// DeleteService removes a service and its endpoints, as Keystone does.
func (d *Directory) DeleteService(ctx context.Context, id string) error {
	if _, err := d.GetService(ctx, id); err != nil {
		return err
	}
	eps, err := d.ListEndpoints(ctx)
	if err != nil {
		return err
	}
	errs := []error{d.store.Delete(ctx, servicesPrefix+id)}
	for _, ep := range eps {
		if ep.ServiceID == id {
			errs = append(errs, d.store.Delete(context.WithoutCancel(ctx), endpointsPrefix+ep.ID))
		}
	}
	return ignoreNotFound(errors.Join(errs...))
}

// checkEndpoint validates an endpoint against the services and regions.
func (d *Directory) checkEndpoint(ctx context.Context, ep EndpointRecord) error {
	var errs []error
	if !slices.Contains(Interfaces, ep.Interface) {
		errs = append(errs, &registry.FieldError{Field: "endpoint.interface", Reason: "must be public, internal or admin"})
	}
	if u, err := url.Parse(ExpandURL(ep.URL, "http://broker")); ep.URL == "" || err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, &registry.FieldError{Field: "endpoint.url", Reason: "must be an absolute URL"})
	}
	if _, err := d.GetService(ctx, ep.ServiceID); errors.Is(err, ErrNotFound) {
		errs = append(errs, &registry.FieldError{Field: "endpoint.service_id", Reason: fmt.Sprintf("no service %q", ep.ServiceID)})
	} else if err != nil {
		return err
	}
	if ep.RegionID != "" {
		if _, err := d.GetRegion(ctx, ep.RegionID); errors.Is(err, ErrNotFound) {
			errs = append(errs, &registry.FieldError{Field: "endpoint.region_id", Reason: fmt.Sprintf("no region %q", ep.RegionID)})
		} else if err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// CreateEndpoint adds an endpoint of a service.
func (d *Directory) CreateEndpoint(ctx context.Context, ep EndpointRecord) (EndpointRecord, error) {
	if err := d.checkEndpoint(ctx, ep); err != nil {
		return EndpointRecord{}, err
	}
	ep.ID = NewID()
	return ep, createJSON(ctx, d.store, endpointsPrefix+ep.ID, "endpoint", ep.ID, ep)
}

// GetEndpoint finds an endpoint.
func (d *Directory) GetEndpoint(ctx context.Context, id string) (EndpointRecord, error) {
	if strings.Contains(id, "/") {
		return EndpointRecord{}, fmt.Errorf("%w endpoint %s", ErrNotFound, id)
	}
	return getJSON[EndpointRecord](ctx, d.store, endpointsPrefix+id, "endpoint", id)
}

// ListEndpoints lists every endpoint.
func (d *Directory) ListEndpoints(ctx context.Context) ([]EndpointRecord, error) {
	return listJSON[EndpointRecord](ctx, d.store, endpointsPrefix)
}

// UpdateEndpoint changes an endpoint; the ID is kept.
func (d *Directory) UpdateEndpoint(ctx context.Context, id string, change func(*EndpointRecord)) (EndpointRecord, error) {
	return updateJSON(ctx, d, endpointsPrefix, "endpoint", id, change, func(cur, next *EndpointRecord) error {
		next.ID = cur.ID
		return d.checkEndpoint(ctx, *next)
	})
}

// DeleteEndpoint removes an endpoint.
func (d *Directory) DeleteEndpoint(ctx context.Context, id string) error {
	if _, err := d.GetEndpoint(ctx, id); err != nil {
		return err
	}
	return d.store.Delete(ctx, endpointsPrefix+id)
}
