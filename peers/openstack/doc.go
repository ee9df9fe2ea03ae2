// Package openstack connects remote OpenStack clouds to the pool: a
// peers.Cloud over gophercloud v2 (Cloud, built by New or by Connect, the
// pool's peers.Connector for registry.KindOpenStack), and the reading of
// clouds.yaml (through gophercloud's own types, so it is read exactly as
// gophercloud reads it) into peer records and credentials.
//
// The driver in brief:
//
//   - Auth by password, application credential or token (AllowReauth: a
//     401 fetches a new token and replays the call), region and endpoint
//     interface from the peer's Endpoint, its CA bundle or insecure flag.
//   - Microversions: Nova is asked for WantComputeMicroversion, Cinder for
//     WantVolumeMicroversion, each capped by the maximum the service's
//     version document announces; behaviour that changed across versions
//     (networks "none" since 2.37, flavors embedded by name since 2.47,
//     hypervisor statistics gone at 2.88, live extend since 3.42) is handled
//     on both sides of its threshold.
//   - Everything is created in the project the credentials are scoped to;
//     a resource's Project is that remote project, and the broker's project
//     and IDs ride in metadata (Nova and Cinder metadata, Glance
//     properties, Neutron description and tags: see meta.go), so the broker
//     can find and adopt its resources by scanning.
//   - Errors are translated at the boundary to the peers sentinels
//     (errors.go); idempotent calls (GET, HEAD, DELETE) are retried with
//     jittered exponential backoff on 5xx, 429 and dropped connections
//     (retry.go); every call gets a deadline from its context, or
//     Config.CallTimeout when it has none.
//   - Image data moves as streams both ways and is checked: size and the
//     expected MD5 on upload (bad bytes never reach active), Glance's
//     Content-MD5 on download.
//   - Object storage (peers.Objects, objects.go) when the catalog lists an
//     object store: the pool's cloud is then Cloud.Peer's, which has the
//     ability, so the broker's type assertion finds it only where Swift
//     is. Uploads stream in one PUT (Content-Length or chunked), counted
//     and hashed as they go, with the ETag sent for Swift to verify; a bad
//     upload is cut before its last bytes, so Swift keeps the previous
//     object. Whole reads are checked against the ETag. An expiry already
//     past (which Swift refuses) deletes; one that passes later is
//     Swift's: 404 at once, gone from listings and counts when the
//     cluster's object expirer runs. Capacity's ObjectBytes is the
//     account's usage, with its quota as total when one is set.
//   - Security groups (peers.SecurityGroups, secgroups.go): each broker
//     group put on the peer has a mirror group cloudmux-sg-<broker group
//     ID> in the remote project, its rules kept equal to the broker's (a
//     remote-group rule names the other mirror); ports and servers created
//     with groups are put in mirrors at create, so the remote project's
//     own default group never holds them. Remote groups match members on
//     this cloud only.
//
// Tests run the peers/peertest conformance suite against a real OpenStack
// (the shared testcloud, scripts/openstack-testcloud.sh) and test error
// translation and retries against a real HTTP server.
package openstack
