// Package compute is the broker's Nova v2.1 API and the servers service
// layer behind it.
//
// Servers (servers.go) is the reusable layer: create (placement through
// policy.Placer among the peers holding the image, networks and boot
// volume the request names), get, list (fan-out with a per-peer deadline
// and a partial-result report), update, delete, power actions, console
// output, volume attachments and usage. The lifecycle (lifecycle.go,
// resize.go, instanceactions.go) goes through it too: pause/unpause,
// suspend/resume, createImage (serverimage.go: the peer's snapshot,
// registered through the image service's CreateOn as a broker image),
// resize with confirm/revert (the growth reserved in the
// quota, the larger flavor held until settled), lock/unlock (the broker's
// own: a locked server refuses non-admins with 409), os-resetState, and
// every action recorded under its request ID (os-instance-actions, its
// event naming the peer it ran on), deleted with the server and collected
// when orphaned. Server groups (servergroups.go) are the broker's own
// records; a group's policy reaches placement as policy.Request.Group,
// which the policy package enforces in Go, and a member is recorded with
// a re-check against the group as it is then. Nova's action
// bodies are parsed in actions_http.go. The Nova HTTP handlers and the EC2
// API call the same functions, so both apply the same placement, tenancy
// and ID rules. See the Servers doc comment for the rules.
//
// Nova (nova.go) serves version discovery and microversion negotiation,
// flavors merged across the pool, one availability zone per peer,
// os-keypairs, which the broker keeps itself (per user, as Nova does) and
// hands to whichever peer a server lands on, servers (with actions,
// metadata, ips, os-volume_attachments and a read-only os-interface, by
// broker IDs: the ports a peer makes for a server's NICs on networks are
// the network API's, counted in the project's port quota with the server;
// security groups on create, addSecurityGroup/removeSecurityGroup and
// /servers/{id}/os-security-groups through the network service, which has
// the peers enforce them, and the read-only os-security-groups proxy
// before 2.36: secgroups.go), limits and os-quota-sets (quotas.go: StoreQuotas keeps per-project
// quotas in the Store, which the placement policy enforces across every
// peer; cloud admins set them). Errors use Nova's shapes
// ({"itemNotFound": {...}} and kin). It implements microversions 2.1 to
// MaxVersion (microversions.go lists what each changes): every versioned
// behaviour goes through one gate, at(r, "2.x"); views by version are in
// servers_views.go, the create body in servers_create.go, list filters in
// servers_list.go, server tags in servertags_http.go.
package compute
