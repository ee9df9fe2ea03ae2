// Package network is the broker's Neutron v2.0 API and the service layer
// behind it.
//
// Service is what both the HTTP handlers and the compute API use: it
// resolves a network, subnet or port ID as a project sees it (Resolve),
// creates networks on the peer placement picks (availability_zone_hints
// pins one), creates subnets and ports on their network's peer, and lists
// and shows them under broker-wide IDs. Three kinds of resources are
// visible:
//
//   - resources the broker created: a broker UUID in the index (kinds
//     "network", "subnet", "port"), peers.MetaBrokerID/MetaProject/MetaID on
//     the peer resource; visible to their project, and a shared network
//     (with its subnets) to every project;
//   - a peer's own shared or external networks (a devstack-like "private"
//     network, a remote cloud's public network) and their subnets, under
//     a broker ID derived from the peer and its ID (NativeID: a name-based
//     UUID, the same on every replica, with no record); visible to every
//     project, read-only, and never indexed. Every replica keeps them in
//     memory, learnt by reading each peer's networks: at first need, in
//     Run's background discovery (every DiscoveryInterval) and in every
//     full list, so resolving one never asks the peers;
//   - ports a peer made for a server booted on a network (Nova's
//     networks: [{"uuid": ...}]), under NativeID too, indexed (kind
//     "server_port", the server's project, the server as Parent) when the
//     broker first shows them; the project's alone. They count against
//     the project's port quota through their server's charge (the compute
//     API reserves them before the boot) and are forgotten with the
//     server (ForgetServerPorts), or by discovery once gone from the peer.
//
// A peer's own ID is never shown and never accepted: like any unknown ID,
// it is "not found". Everything else is "not found", whoever owns it.
//
// A project's list reads only the peers that may hold what it sees: those
// of its index entries, those with shared or external networks (the
// discovery's per-peer flag, and the networks a broker created shared,
// whose index entries say so, so every replica knows at once), and those
// never read yet; an admin's list of every project reads every peer.
//
// Security groups are broker-level records in the registry store, per
// project, with Neutron's "default" group made on first use. Every
// replica serves them from memory (GroupsMemory, fed by a Store watch);
// changes CAS in the Store. The peers enforce them (enforce.go,
// peers.SecurityGroups): a group is put on a peer when a port there is
// first put in it, the group records the peers holding a copy, and a
// rule change goes to them (a rule a peer cannot filter is refused and
// undone). Every port the broker makes, and every port a peer makes for
// a server, is in groups (the default group when none are asked for), so
// no port is left to a remote cloud's own default group; a peer that
// cannot enforce groups takes only the default group, unenforced, and
// refuses others. A server's groups are kept beside it (Attrs of kind
// "server"); its ports without groups of their own are in them. A group
// a port or a server is in cannot be deleted (SecurityGroupInUse).
//
// Routers and floating IPs (routers.go, floatingips.go) are the peers'
// (peers.Routers), one peer each, indexed (kinds "router" and
// "floatingip", the project's alone) and counted against the router and
// floatingip quotas. A router goes to its external network's peer (or,
// without a gateway, to a peer placement picks among those that can
// route); it joins subnets, and a floating IP maps onto ports, of its own
// peer only. External networks are the peers' own (NativeID). EC2's
// Elastic IPs are the same floating IPs. The port an interface by
// subnet takes is the router's project's (kind "router_port"), counted
// in its port quota; the gateway's port is in no project, shown to cloud
// admins alone and never deleted directly, as Neutron has both
// (routerports.go).
//
// Failures leave nothing a client cannot see or finish: index entries are
// removed after the peer's resource (a network's after its subnets'), so a
// delete cut short is completed by deleting again; a create whose peer
// acted but lost the answer removes what it made, found by its broker ID.
//
// Another API (the compute API booting a server) uses the Service, never
// the HTTP layer: Resolve(ctx, project, KindNetwork, uuid) for Nova's
// networks: [{"uuid": ...}] and Resolve(ctx, project, KindPort, id) for
// [{"port": ...}] give the peer (Ref.Member) and the peer's ID
// (Ref.PeerResourceID) to put in peers.NetworkAttachment; the server must
// go to that peer. ServerPorts gives a server's ports (os-interface),
// ForgetServerPorts drops them once the server is deleted. List(ctx,
// project, false) gives the networks a project may use (for "auto"),
// FindSecurityGroup and ResolveGroups the groups Nova's security_groups
// name, PrepareGroups puts them on the peer a server boots on (their IDs
// go in peers.ServerSpec.SecurityGroups), RecordServerGroups and
// ServerGroups keep and read a server's groups, ChangeServerGroups is
// Nova's addSecurityGroup/removeSecurityGroup. Errors are *Error values wrapping ErrNotFound,
// ErrInUse, ErrInvalid or ErrForbidden (which wrap the peers sentinels).
//
// Neutron (HTTP) is the API itself, with Neutron's error bodies
// ({"NeutronError": {"type": ..., "message": ..., "detail": ""}}).
package network
