// Package object is the broker's object storage service: Swift's model
// (accounts of containers of objects) spread over the peers that have
// object storage (peers.Objects). The Swift API (broker/swift) is a thin
// front end over it; no other code calls a peer's peers.Objects.
//
//   - Records: a container is a broker record in the Store (records.go):
//     its project, its name, the peer holding it and the peer-side
//     container the broker named (Service.PeerPrefix, which names the
//     installation, + a UUID; never the tenant's name), its metadata (X-Container-Meta-*, the quota metadata among
//     them), its ACLs and versions container, its times. An account's own
//     metadata (X-Account-Meta-*) is one record per project. Both are
//     served from watch-fed memory on every replica (registry.Records,
//     grouped by project), so listing an account reads no Store prefix.
//
//   - Tenancy: an account is AUTH_<project ID>; a token reads its own
//     project's account (any role) and writes it with the member role.
//     Another project's account is ErrForbidden for every path under it,
//     whether the container or object exists or not, so nothing leaks,
//     except what a container's ACLs (acl.go: X-Container-Read and
//     -Write, keystoneauth's forms, referrers and .rlistings) grant on
//     that container's objects and listing. A request without a valid
//     token (none, or one invalid, expired or revoked: Swift's
//     keystoneauth treats an invalid identity so) is anonymous: referrer
//     grants only, else ErrUnauthorized. A cloud admin (Swift's reseller
//     admin) may use every account.
//
//   - Placement: a new container goes to a connected, usable peer with
//     object storage that does not report its object bytes full; the
//     placement policy (policy.Placer, kind "container") orders those by
//     labels, cost and health, and a peer that refuses hands over to the
//     next. A container's objects all live on its peer.
//
//   - Usage: a container's count and bytes are its peer's (ContainerStats,
//     read for every container HEAD and listing). An account's HEAD and
//     listing ask only the peers of the project's own containers (never
//     every peer), one call per container in parallel, and keep each
//     answer UsageTTL (2s) in memory, so a burst of listings asks once;
//     this broker's writes forget the entry they change. A container whose
//     peer does not answer shows its last known usage. The cost is one
//     call per container of the project per UsageTTL: cheap on the local
//     cloud (counters in memory), and what Swift's own account server
//     avoids with its database, which a later step may mirror.
//
//   - Quotas, in Go as Swift's container_quotas and account_quotas
//     middlewares keep them: X-Container-Meta-Quota-Bytes and -Count,
//     and X-Account-Meta-Quota-Bytes (only a cloud admin may set it). A
//     PUT of known length over a quota is refused before a byte is read;
//     a chunked one is cut off where it would pass the quota, and nothing
//     is stored. The project quota ledger (broker/quota) does not count
//     object bytes yet.
//
//   - Garbage collection (gc.go, Reaper): a project gone for the orphan
//     grace has its containers emptied on their peers and its records
//     removed, as Swift's account reaper does; a container whose peer was
//     removed from the registry is forgotten. A container is made on its
//     peer before its record is written, so a broker that dies in between
//     leaves an empty peer-side container no record names: the Reaper
//     lists each peer's containers by the broker's prefix
//     (peers.Objects.ListContainers) and removes those seen unnamed and
//     empty for the grace (orphans.go).
//
//   - Large objects (largeobj.go): an SLO manifest is an object listing
//     its segments, marked in its content type so listings and HEADs
//     show the whole object without reading it; a DLO manifest carries
//     its container/prefix there, its segments listed on each read. A GET
//     streams the segments from their own peers with the caller's
//     identity.
//
//   - Data streams: objects pass through as readers, never whole in
//     memory; a copy streams from its source's peer to its destination's,
//     the source's ETag checked on arrival.
package object
