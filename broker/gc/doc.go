// Package gc runs the broker's garbage collectors: every record kind in
// the Store that grows with use (decision records, image tombstones, index
// entries, expired tokens and revocations, staging replicas of deleted
// images, ...) has a Collector that removes what is past its retention, and
// one Runner per broker runs them all periodically.
//
// # Collector
//
// A Collector is what a record kind's owner implements, in its own package
// (the interface is structural: nothing here needs importing):
//
//	type Collector interface {
//		Name() string                                            // a metric label: "policy-decisions", "identity-tokens"
//		Collect(ctx context.Context, now time.Time) (int, error) // remove what is past retention at now; how many records went
//	}
//
// Collect removes only what is past retention at now (now comes from the
// Runner, so tests pass any instant), reads as little as it can (an index
// or time-bucketed keys, never a whole prefix of live records when it can
// help it) and is safe to repeat: a pass cut short (the context ended, the
// lease was lost, the broker died) leaves nothing the next pass cannot
// finish. Collect returns when ctx ends. Settings such as retention are the
// collector's own, given to its constructor.
//
// # Runner
//
// Runner runs every collector once per Interval, one after the other, on
// one broker of the installation at a time: a broker collects only while it
// holds the Store lease at Key (registry.Locker.TryLock), keeps it across
// passes, and lets it go on shutdown so another replica takes over at its
// next tick. The context a collector gets ends when the lease is lost.
// Local collectors are the exception: what a broker keeps for itself (its
// in-process local cloud's image tombstones) it collects on every pass,
// lease or not. Each pass is logged per collector (what it removed, how
// long it took, its error) and counted in the cloudmux_gc_* metrics.
//
// # Orphans
//
// Records with no time of their own that outlive what they belong to (a
// removed peer's health, a deleted image's deactivation, the attributes of
// a server that vanished from its peer) are collected by an Orphans: the
// owner's package supplies the judge (which of the listed records have no
// owner), Orphans supplies the safety (a record goes only once it has been
// seen orphaned and unchanged for Grace, by compare-and-delete) and, with
// Removed, gives back what a removed record counted elsewhere.
//
// cmd/cloudmux (gc.go) assembles the collectors and their retention
// settings (the gc section of the configuration, -retain-* flags).
package gc
