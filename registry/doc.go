// Package registry owns cloudmux's durable state: a small key-value contract
// (Store) with a Consul backend and an in-memory backend, and the Peer
// resource-pool registry built on it (peer records, credentials, health and
// capacity, a watch-fed in-memory snapshot for the request hot path).
//
// Every other durable record in cloudmux (the resource index, policies,
// templates, deployments, tokens) lives in a Store, so every broker replica
// pointed at the same Consul cluster sees the same state.
//
// Store semantics are Consul's KV store's, on both backends: one index
// counter orders every write across keys; a List or Watch answers the
// whole prefix with the prefix's index (the highest modify or delete index
// under it, deletes remembered by tombstones, reaped after a while without
// moving the index backwards); a Watch is a blocking query that answers
// when that index moves, at once when the caller's index is not the
// prefix's; an index that goes backwards means the store was rebuilt, and
// a watcher starts over. The memory backend adds one capability Consul
// lacks, ChangeWatcher: a watch answered with the keys changed since an
// index, from a bounded log of recent writes. A Mirror uses it when the
// Store offers it, and lists the prefix whole when the log no longer
// reaches back far enough; over Consul it reads whole prefixes.
package registry
