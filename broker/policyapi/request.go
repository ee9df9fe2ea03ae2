package policyapi

import (
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// ExplainRequest is the body of POST /v1/placement/explain.
type ExplainRequest struct {
	Request Request `json:"request"`
	// Peers, when set (cloud admins), replace the live candidates: what
	// would the policy do with these peers?
	Peers []registry.Peer `json:"peers,omitempty"`
	// Version explains with that policy version instead of the active one
	// (cloud admins): try a version before activating it.
	Version string `json:"version,omitempty"`
}

// Request is a placement request in the shape of the policy's
// input.request (see package policy).
type Request struct {
	Kind       string `json:"kind"`
	Project    string `json:"project,omitempty"`
	User       string `json:"user,omitempty"`
	ResourceID string `json:"resource_id,omitempty"`
	Name       string `json:"name,omitempty"`
	Flavor     string `json:"flavor,omitempty"`
	Resources  struct {
		VCPUs   int `json:"vcpus"`
		RAMMiB  int `json:"ram_mib"`
		DiskGiB int `json:"disk_gib"`
	} `json:"resources"`
	Image *struct {
		ID         string            `json:"id"`
		Properties map[string]string `json:"properties,omitempty"`
		MinRAMMiB  int               `json:"min_ram_mib,omitempty"`
		MinDiskGiB int               `json:"min_disk_gib,omitempty"`
		Peers      []string          `json:"peers,omitempty"`
	} `json:"image,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Hints struct {
		RequiredLabels  map[string]string `json:"required_labels,omitempty"`
		PreferredLabels map[string]string `json:"preferred_labels,omitempty"`
		Other           map[string]string `json:"other,omitempty"`
	} `json:"hints"`
	AvailabilityZone string `json:"availability_zone,omitempty"`
	Deployment       *struct {
		ID       string `json:"id"`
		Template string `json:"template,omitempty"`
		Resource string `json:"resource,omitempty"`
		Replica  int    `json:"replica,omitempty"`
	} `json:"deployment,omitempty"`
	Spread struct {
		Group string         `json:"group,omitempty"`
		Peers map[string]int `json:"peers,omitempty"`
	} `json:"spread"`
	Usage *policy.Usage `json:"usage,omitempty"`
	Quota *policy.Usage `json:"quota,omitempty"`
}

func (q Request) validate() error {
	var errs []error
	bad := func(field, why string) {
		errs = append(errs, fmt.Errorf("%w: request.%s: %s", errBadRequest, field, why))
	}
	if q.Kind == "" {
		bad("kind", "needed (server, volume, ...)")
	}
	if q.Resources.VCPUs < 0 || q.Resources.RAMMiB < 0 || q.Resources.DiskGiB < 0 {
		bad("resources", "sizes cannot be negative")
	}
	for id, n := range q.Spread.Peers {
		if n < 0 {
			bad("spread.peers."+id, "cannot be negative")
		}
	}
	return errors.Join(errs...)
}

// toPolicy converts the wire request to the engine's.
func (q Request) toPolicy() policy.Request {
	r := policy.Request{Kind: q.Kind, Project: q.Project, User: q.User, ResourceID: q.ResourceID, Name: q.Name, Flavor: q.Flavor,
		VCPUs: q.Resources.VCPUs, RAMMiB: q.Resources.RAMMiB, DiskGiB: q.Resources.DiskGiB,
		AvailabilityZone: q.AvailabilityZone, RequiredLabels: q.Hints.RequiredLabels, PreferredLabels: q.Hints.PreferredLabels,
		Hints: q.Hints.Other, Tags: q.Tags, SpreadPeers: q.Spread.Peers, Usage: q.Usage, Quota: q.Quota}
	if i := q.Image; i != nil {
		r.Image = &policy.Image{ID: i.ID, Properties: i.Properties, MinRAMMiB: i.MinRAMMiB, MinDiskGiB: i.MinDiskGiB, Peers: i.Peers}
	}
	if d := q.Deployment; d != nil {
		r.Deployment = &policy.Deployment{ID: d.ID, Template: d.Template, Resource: d.Resource, Replica: d.Replica}
	}
	if q.Spread.Group != "" {
		if r.Deployment == nil {
			r.Deployment = &policy.Deployment{}
		}
		r.Deployment.SpreadGroup = q.Spread.Group
	}
	return r
}

// Pool is the part of peers.Pool explain reads candidates from.
type Pool interface {
	Members() []*peers.Member
}

// PoolCandidates returns the connected members of pool as placement
// candidates, as the broker's create paths pass them: API.Candidates.
func PoolCandidates(pool Pool) func() []registry.Peer {
	return func() []registry.Peer {
		var out []registry.Peer
		for _, m := range pool.Members() {
			if m.Cloud != nil {
				out = append(out, m.Peer)
			}
		}
		return out
	}
}
