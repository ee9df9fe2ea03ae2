package network

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// leavingServerGrace bounds how long a subnet or network delete waits for
// the peer to finish tearing down servers the broker already deleted.
const leavingServerGrace = 2 * time.Minute

// deleteAfterLeavingServers runs del, a peer's delete of a subnet or
// network; while the peer refuses it (ErrConflict) only because of ports
// of servers the broker has already deleted, it waits for the peer's
// teardown and tries again. The compute API forgets a server as soon as
// its peer has started deleting it, but the peer frees the server's ports
// only once the domain is gone; Nova answers 404 for a server only after
// its ports are deallocated, so a client that deletes the server and then
// its network (as every tutorial does) expects the network free. inWay
// tells which of the peer's ports hold the resource. Any other port in
// the way (a live server's, a user's, a router's) is a true conflict.
func (s *Service) deleteAfterLeavingServers(ctx context.Context, m *peers.Member, inWay func(peers.Port) bool, del func(context.Context) error) error {
	err := del(ctx)
	if !errors.Is(err, peers.ErrConflict) {
		return err
	}
	deadline := time.Now().Add(leavingServerGrace)
	for wait := 200 * time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 2*time.Second) {
		leaving, lerr := s.onlyLeavingServers(ctx, m, inWay)
		if lerr != nil || !leaving {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if err = del(ctx); !errors.Is(err, peers.ErrConflict) {
			return err
		}
	}
	return err
}

// onlyLeavingServers reports whether every port of m in the way is a
// server's that the broker no longer indexes (deleted, being torn down on
// the peer). No port in the way reports true: the peer's own state moved
// on since its refusal, and the delete should be tried again.
func (s *Service) onlyLeavingServers(ctx context.Context, m *peers.Member, inWay func(peers.Port) bool) (bool, error) {
	ports, err := m.Cloud.ListPorts(ctx, peers.ListOptions{})
	if err != nil {
		return false, err
	}
	for _, p := range ports {
		if !inWay(p) || p.DeviceOwner == "network:dhcp" {
			continue // Neutron deletes its DHCP ports with the network
		}
		if !strings.HasPrefix(p.DeviceOwner, "compute:") || p.DeviceID == "" {
			return false, nil
		}
		srv, err := m.Cloud.GetServer(ctx, p.DeviceID)
		switch {
		case errors.Is(err, peers.ErrNotFound):
			continue // gone already; its port goes next
		case err != nil:
			return false, err
		}
		if srv.Status == peers.ServerError {
			return false, nil // its teardown failed: nothing will free the port
		}
		if srv.Metadata[peers.MetaBrokerID] != s.BrokerID {
			return false, nil // another broker's or the cloud's own server
		}
		if id := srv.Metadata[peers.MetaID]; id == "" || s.serverExists(ctx, id) {
			return false, nil
		}
	}
	return true, nil
}

// onSubnet returns whether a port has an address on peer subnet id.
func onSubnet(id string) func(peers.Port) bool {
	return func(p peers.Port) bool {
		return slices.ContainsFunc(p.FixedIPs, func(f peers.FixedIP) bool { return f.SubnetID == id })
	}
}

// onNetwork returns whether a port is on peer network id.
func onNetwork(id string) func(peers.Port) bool {
	return func(p peers.Port) bool { return p.NetworkID == id }
}
