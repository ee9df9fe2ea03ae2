// Package volume is the broker's volume service and the Cinder v3 API in
// front of it.
//
// Service (service.go, ops.go) is the one layer that calls peers' volume
// APIs: Cinder, the EC2 volume actions and the servers service's boot
// volumes all go through it, so they share placement (policy.Placer, the
// next allowed peer on capacity), the resource index, tenancy (another
// project's volume is not found, by every ID form) and IDs (broker IDs
// only; a peer's raw ID is never accepted). Volumes are listed across
// peers with a deadline-bounded fan-out to the peers holding the
// project's volumes.
//
// Snapshots (snapshots.go) are the service's too: taken on the volume's
// peer (peers.Snapshots), indexed as SnapshotKind under their own broker
// IDs with the volume's as Parent, counted {snapshots: 1, gigabytes:
// size}; a volume made from a snapshot, or a clone of a volume, is made
// on its source's peer whatever placement would pick, and a volume with
// snapshots is not deleted. Their renames and metadata are kept with the
// volumes' attrs.
//
// Volume types (types.go) are the broker's, kept in the Store and served
// from a watch-fed memory: a type's extra specs become the placement
// request's required peer labels and the peer's own volume type, so a
// type restricted to a label only ever lands on peers carrying it.
//
// Quotas (quota.go): every volume counts {volumes: 1, gigabytes: size}
// in the project's quota.Ledger, reserved before any peer is asked,
// committed once the peer made it, freed once on delete; extends reserve
// the added gigabytes.
//
// Cinder (cinder.go, cindersnap.go, cindertypes.go) maps the service to Cinder's paths,
// bodies, microversions and error shapes; cinderquota.go serves os-quota-sets and
// limits over the ledger and quota.Limits.
package volume
