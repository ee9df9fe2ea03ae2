package consul

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Catalog naming. Every peer is one instance of one service, so
// `consul catalog nodes -service=cloudmux-peer` and the health API list the
// pool; the instance's ID and its check's ID derive from the peer ID.
const (
	ServiceName = "cloudmux-peer"

	// CheckTTL is how long a peer's check stays as last set: the prober
	// must call SetHealth at least this often, and a broker that stops
	// probing lets its peers turn critical after it. 30s leaves room for a
	// few missed probes at any sensible probe interval (5-15s) while still
	// surfacing a dead prober within a minute.
	CheckTTL = 30 * time.Second

	// DeregisterCriticalAfter removes an instance whose check has been
	// critical that long. Peers themselves live in the KV store; the catalog
	// entry is a view, so removing it loses nothing. It exists to clean up
	// instances orphaned on an agent no broker talks to any more (a broker
	// moved hosts). A day is long enough that a peer down overnight stays
	// visible as critical rather than vanishing, and short enough that
	// orphans do not pile up.
	DeregisterCriticalAfter = 24 * time.Hour
)

// ServiceID is the catalog instance ID of a peer.
func ServiceID(peerID string) string { return ServiceName + "-" + peerID }

// CheckID is the ID of a peer's TTL check.
func CheckID(peerID string) string { return ServiceID(peerID) + "-ttl" }

// RegisterPeer implements registry.ServiceCatalog. It registers (or
// re-registers, replacing the check) the peer with the agent at the Store's
// address, then sets the check from the record's status and reason, so a
// refreshed registration shows what the prober last saw. A peer without a
// status starts critical: unprobed is not healthy.
//
// Registrations belong to the agent they were made on (Consul's agent
// model): brokers should talk to their local agent, and two brokers on two
// agents registering the same peer produce two instances, one per node.
func (s *Store) RegisterPeer(ctx context.Context, p registry.Peer) error {
	if err := checkPeerID(p.ID); err != nil {
		return fmt.Errorf("consul: register peer: %w", err)
	}
	reg := &api.AgentServiceRegistration{
		ID:   ServiceID(p.ID),
		Name: ServiceName,
		Tags: peerTags(p),
		Meta: map[string]string{
			"peer_id":   p.ID,
			"peer_name": p.Name,
			"kind":      string(p.Kind),
		},
		Check: &api.AgentServiceCheck{
			CheckID:                        CheckID(p.ID),
			Name:                           "cloudmux peer health",
			Notes:                          "Set by the cloudmux broker's prober; critical once it stops reporting for " + CheckTTL.String() + ".",
			TTL:                            CheckTTL.String(),
			Status:                         api.HealthCritical,
			DeregisterCriticalServiceAfter: DeregisterCriticalAfter.String(),
		},
	}
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := s.client.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return s.fail(ctx, "register peer", p.ID, err)
	}
	s.log.WithFields(logrus.Fields{"peer_id": p.ID, "peer": p.Name, "kind": p.Kind}).Info("consul: peer registered in the catalog")
	if p.Status == "" {
		return nil
	}
	return s.SetHealth(ctx, p.ID, p.Status, p.StatusReason)
}

// DeregisterPeer implements registry.ServiceCatalog; an unknown peer is not
// an error.
func (s *Store) DeregisterPeer(ctx context.Context, peerID string) error {
	if err := checkPeerID(peerID); err != nil {
		return fmt.Errorf("consul: deregister peer: %w", err)
	}
	err := s.client.Agent().ServiceDeregisterOpts(ServiceID(peerID), readOpts(ctx))
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return s.fail(ctx, "deregister peer", peerID, err)
	}
	s.log.WithField("peer_id", peerID).Info("consul: peer deregistered from the catalog")
	return nil
}

// SetHealth implements registry.ServiceCatalog: up passes the check,
// degraded warns, down fails it, and maintenance fails it too with a note
// that starts "maintenance:" so operators see why. (Consul's own service
// maintenance mode is not used: it adds a second check with a lifecycle of
// its own, and the peer's one TTL check, driven by the prober, should stay
// the single source of the peer's health in the catalog.)
//
// A peer unknown to the agent (never registered, or removed after
// DeregisterCriticalAfter) yields registry.ErrNotFound: the caller should
// RegisterPeer again. Consul pushes a status change to the catalog at once
// but a note-only change lazily (its check_update_interval, 5 min by
// default); the agent's own view is always current.
func (s *Store) SetHealth(ctx context.Context, peerID string, status registry.Status, note string) error {
	if err := checkPeerID(peerID); err != nil {
		return fmt.Errorf("consul: set health: %w", err)
	}
	checkStatus, output, err := healthUpdate(status, note)
	if err != nil {
		return fmt.Errorf("consul: set health of %q: %w", peerID, err)
	}
	err = s.client.Agent().UpdateTTLOpts(CheckID(peerID), output, checkStatus, readOpts(ctx))
	if isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("consul: set health of %q: peer not registered with the agent: %w", peerID, registry.ErrNotFound)
	}
	if err != nil {
		return s.fail(ctx, "set health", peerID, err)
	}
	s.log.WithFields(logrus.Fields{"peer_id": peerID, "status": status, "check_status": checkStatus}).Debug("consul: peer health set")
	return nil
}

// healthUpdate maps a peer status onto a check status and output.
func healthUpdate(status registry.Status, note string) (string, string, error) {
	switch status {
	case registry.StatusUp:
		return api.HealthPassing, note, nil
	case registry.StatusDegraded:
		return api.HealthWarning, note, nil
	case registry.StatusDown:
		return api.HealthCritical, note, nil
	case registry.StatusMaintenance:
		if note == "" {
			return api.HealthCritical, "maintenance", nil
		}
		return api.HealthCritical, "maintenance: " + note, nil
	}
	return "", "", &registry.FieldError{Field: "status", Reason: fmt.Sprintf("%q is not one of %v", status, registry.Statuses)}
}

// peerTags are the instance's tags: kind and name first, then each label as
// k=v in key order, so a re-registration with the same labels is a no-op.
func peerTags(p registry.Peer) []string {
	tags := []string{"kind=" + string(p.Kind), "name=" + p.Name}
	keys := make([]string, 0, len(p.Labels))
	for k := range p.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		tags = append(tags, k+"="+p.Labels[k])
	}
	return tags
}

// checkPeerID rejects IDs that cannot name a service in Consul's agent API.
// Its endpoints carry the ID in the URL path, where Go's ServeMux would
// clean a '/'-separated "." or ".." segment into another ID.
func checkPeerID(id string) error {
	bad := func(reason string) error {
		return &registry.FieldError{Field: "id", Reason: reason}
	}
	switch {
	case id == "":
		return bad("is empty")
	case id == "." || id == "..":
		return bad(fmt.Sprintf("%q is not a usable ID", id))
	case strings.Contains(id, "/"):
		return bad(fmt.Sprintf("%q holds a '/'", id))
	case strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return bad(fmt.Sprintf("%q holds whitespace or a control character", id))
	}
	return nil
}
