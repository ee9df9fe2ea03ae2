package registry

import "time"

// Kind says which driver connects to a peer.
type Kind string

// The peer kinds cloudmux knows.
const (
	KindLocal     Kind = "local"
	KindOpenStack Kind = "openstack"
)

// Kinds lists the valid kinds, for validation messages.
var Kinds = []Kind{KindLocal, KindOpenStack}

// Status is a peer's health as the prober last saw it.
type Status string

// Peer statuses. Only up and degraded peers receive new work; maintenance is
// set by an admin and the prober leaves it alone.
const (
	StatusUp          Status = "up"
	StatusDegraded    Status = "degraded"
	StatusDown        Status = "down"
	StatusMaintenance Status = "maintenance"
)

// Statuses lists the valid statuses.
var Statuses = []Status{StatusUp, StatusDegraded, StatusDown, StatusMaintenance}

// Endpoint says how to reach a remote peer's identity service.
type Endpoint struct {
	AuthURL string `json:"auth_url,omitempty"`
	Region  string `json:"region,omitempty"`
	// Interface selects catalog endpoints: public (default), internal, admin.
	Interface string `json:"interface,omitempty"`
	// CACert is a PEM bundle trusted for the peer's TLS endpoints.
	CACert   string `json:"ca_cert,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

// Resource is one dimension of capacity.
type Resource struct {
	Total int64 `json:"total"`
	Used  int64 `json:"used"`
}

// Free is what is left; never negative even when overcommitted.
func (r Resource) Free() int64 { return max(r.Total-r.Used, 0) }

// Capacity is what a peer offers and what is already taken.
type Capacity struct {
	VCPUs     Resource `json:"vcpus"`
	RAMMiB    Resource `json:"ram_mib"`
	DiskGiB   Resource `json:"disk_gib"`
	Instances Resource `json:"instances"`
	// ObjectBytes is object storage (peers.Objects): bytes the peer can
	// hold and holds. Zero for a peer without object storage or one that
	// cannot say.
	ObjectBytes Resource `json:"object_bytes"`
}

// Cost is what running on a peer costs, for placement to compare peers.
type Cost struct {
	Currency     string  `json:"currency,omitempty"`
	VCPUHour     float64 `json:"vcpu_hour"`
	RAMGiBHour   float64 `json:"ram_gib_hour"`
	DiskGiBMonth float64 `json:"disk_gib_month"`
}

// Peer is one cloud in the resource pool. Credentials are not part of the
// record: they live under their own key, named by CredentialsRef, and no API
// returns them.
type Peer struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Kind           Kind              `json:"kind"`
	Endpoint       Endpoint          `json:"endpoint"`
	CredentialsRef string            `json:"credentials_ref,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Capacity       Capacity          `json:"capacity"`
	Cost           Cost              `json:"cost"`
	Status         Status            `json:"status"`
	StatusReason   string            `json:"status_reason,omitempty"`
	LastHeartbeat  time.Time         `json:"last_heartbeat,omitzero"`
	CreatedAt      time.Time         `json:"created_at,omitzero"`
	UpdatedAt      time.Time         `json:"updated_at,omitzero"`
	// CredentialsUpdatedAt moves when credentials change, so the pool
	// knows to reconnect.
	CredentialsUpdatedAt time.Time `json:"credentials_updated_at,omitzero"`
	// Revision is the store's modify index of this record: pass it back to
	// update with compare-and-swap.
	Revision uint64 `json:"revision"`
}
