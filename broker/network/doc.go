// Package network is the broker's Neutron v2.0 API and the service layer
// behind it.
//
// Service is what both the HTTP handlers and the compute API use: it
// resolves a network, subnet or port ID as a project sees it (Resolve),
// creates networks on the peer placement picks (availability_zone_hints
// pins one), creates subnets and ports on their network's peer, and lists
// and shows them under broker-wide IDs. Two kinds of resources are visible:
//
//   - resources the broker created: a broker UUID in the index (kinds
//     "network", "subnet", "port"), peers.MetaBrokerID/MetaProject/MetaID on
//     the peer resource; visible to their project, and a shared network
//     (with its subnets) to every project;
//   - a peer's own shared or external networks (a devstack-like "private"
//     network, a remote cloud's public network) and their subnets, under
//     the peer's own ID, visible to every project and never indexed.
//
// Everything else is "not found", whoever owns it. Security groups are
// broker-level records in the registry store, per project, with Neutron's
// "default" group made on first use; no peer enforces them yet.
//
// Neutron (HTTP) is the API itself, with Neutron's error bodies
// ({"NeutronError": {"type": ..., "message": ..., "detail": ""}}).
package network
