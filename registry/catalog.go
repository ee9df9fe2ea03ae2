package registry

import "context"

// ServiceCatalog publishes peers where operators already look: with Consul,
// each peer is a service instance with a TTL health check, so
// `consul catalog services` and the health API show the pool. The broker's
// prober calls SetHealth on every probe; a broker that stops probing lets the
// TTL lapse and Consul marks the peer critical on its own.
type ServiceCatalog interface {
	// RegisterPeer creates or refreshes the service instance and its check.
	RegisterPeer(ctx context.Context, p Peer) error
	// DeregisterPeer removes the instance; a missing one is not an error.
	DeregisterPeer(ctx context.Context, peerID string) error
	// SetHealth passes, warns or fails the peer's TTL check with a note.
	SetHealth(ctx context.Context, peerID string, status Status, note string) error
}

// NopCatalog is the ServiceCatalog of a broker without Consul (`serve -dev`).
type NopCatalog struct{}

var _ ServiceCatalog = NopCatalog{}

func (NopCatalog) RegisterPeer(context.Context, Peer) error                { return nil }
func (NopCatalog) DeregisterPeer(context.Context, string) error            { return nil }
func (NopCatalog) SetHealth(context.Context, string, Status, string) error { return nil }
