// Package quota is the broker's quota ledger: per-project limits, usage and
// reservations, kept in the registry Store and enforced in Go by every
// service layer that creates something a project pays for (servers,
// volumes, snapshots, networks, ports, security groups, keypairs). The
// placement policy still receives usage and quota and may be stricter, but
// a policy an admin replaces can never lift a limit.
//
// # Why reservations
//
// A create that only checks usage before it starts lets N concurrent
// creates all see the same usage and all pass: ten parallel POST /servers
// against a limit of 2 made 4 servers. Nova's answer (quota_usages and
// reservations) is the model: a create first reserves what it will use,
// atomically against the limit, then commits the reservation into usage
// when the resource exists or releases it when the create fails.
//
// # Layout
//
//   - quotas/<project>: the limits a cloud admin set
//     ({"limits": {"instances": 2}, "descriptions": {...}}; older brokers
//     wrote the bare limits object, still read); a limit never set is the
//     dimension's default, so a changed default reaches every project
//     that did not override it (Nova's rule). -1 is unlimited.
//   - quota-defaults/<resource>: a default a cloud admin changed
//     ({"limit": 5}); the others are the built-in Defaults.
//
// These are Keystone's unified limits too (broker/identity serves them):
// a registered limit is a dimension's default, a limit a project's own.
// Nova's and Cinder's os-quota-sets, Neutron's quotas and /v3/limits read
// and write the same records, so there is one truth. NewLimits serves
// both prefixes from memory, fed by watches, to every view; the ledger
// (Enforcing) reads a project's own limits from the Store at each
// reservation (one key), since another broker's memory learns a limit
// just set only when its watch delivers it, and a create in between must
// not pass the new limit. A changed default reaches a broker with its
// watch.
//   - quota-usage/<scope>: {"used": {...}, "reservations": {id: {...}}},
//     one record per project (and one per user for key_pairs, which Nova
//     counts per user). Every change is a compare-and-swap on that one
//     key, so reserve, commit, release and free are atomic across any
//     number of brokers on one Consul cluster.
//
// # Combined writes
//
// Every create of a project writes the project's one record, twice. A
// broker applies the changes waiting for a record together and writes
// them with one compare-and-swap (combine.go), so its requests never race
// each other on the record; only brokers race. Without it, 32 concurrent
// creates of one project managed 7 calls/s, and some lost race after race
// for 15 s and more; with it, 120-190 calls/s through a leader election on a
// loaded 2-core machine (TestLedgerThroughLeaderFailover).
//
// # A write whose answer was lost
//
// A Consul leader dying under a write leaves unknown whether it landed.
// Each record names every writer's last write (its marks); a writer
// writes a record one batch at a time, so reading the record back says
// exactly whether a lost attempt landed, and the batch answers with what
// that attempt's changes said: a reservation, commit or free lands exactly
// once (TestLostAnswersCountOnce, and against a real three-server cluster
// TestLedgerThroughLeaderFailover).
//
// # Reservations of a broker that dies
//
// A reservation carries an expiry. Its holder extends it while the create
// is in flight (Reservation keeps it alive in the background); a broker
// that dies stops extending it, and the next write to the record (any
// broker's) drops it once expired, freeing what it held. Expiry compares
// wall clocks of different brokers, so TTL must dwarf their skew (NTP keeps
// it in milliseconds; the default TTL is a minute).
//
// # Drift
//
// Usage is counted, not recomputed: a resource created by a broker that
// died between the peer's create and its commit is not counted once the
// reservation expires. A resource deleted behind the broker's back is
// freed when an index rebuild finds it gone, and those of a removed peer
// when the gc removes their index entries (each entry carries what its
// resource counts). SetUsage corrects a record's usage; nothing calls it
// yet: a reconciler comparing usage with the index's charges needs to
// know which dimensions are charged through index entries alone (server
// groups, for one, are not), and is not built.
package quota
