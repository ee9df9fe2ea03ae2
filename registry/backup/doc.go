// Package backup writes a broker installation's durable state (everything
// its registry.Store holds under the installation's key prefix) to a file,
// and restores such a file into an empty Store.
//
// Why not only Consul's own snapshot: `consul snapshot save` captures a
// whole Consul cluster (every other tenant of it, ACLs, sessions) and can
// only be restored over a whole cluster. An installation usually shares
// its Consul with other services, and an operator wants to move or roll
// back cloudmux alone. This file holds exactly the installation's keys,
// read in one consistent List (one recursive Consul read at one index),
// so it restores into a fresh Consul, another prefix, or the memory store.
//
// What is left out: keys held by a lease (locks such as deployment
// ownership and the prober's leadership). A lease belongs to a live
// process; a restored broker takes fresh ones, and the work they guard is
// resumed from the records, as after any broker's death.
//
// What it does not hold: the credentials key file (peer credentials are
// sealed with it, and a broker refuses a key that is not the
// installation's), the local cloud's disks and object data under each
// hosting broker's data_dir, and what the peers themselves hold. Back those
// up beside this file; the README's "Backup and restore" section says how.
//
// The file is gzip-compressed JSON lines: a header, one line per key, and
// a trailer with the key count and a SHA-256 over every key and value, so a
// truncated or altered file is refused before anything is written.
package backup
