// Package policy decides placement: it compiles the Rego policy cloud
// admins author (through OPA's Go API, prepared once per policy version),
// evaluates it per decision against the request and the candidate peers,
// and explains every decision: which peers were rejected and why, and how the
// allowed ones scored. Policies live in the registry Store and hot-reload on
// every broker replica through the watch.
//
// # Engine
//
// Engine implements Placer. It holds the active version compiled (rego
// PrepareForEval, once per version) and evaluates it per decision under a
// deadline (DefaultTimeout). Evaluation errors, timeouts and malformed
// output fail closed: Place returns an error wrapping ErrEvaluation and no
// decision. Place records every decision (Decisions) and writes one
// decision log entry in OPA's shape (decision_id, path, input, result,
// timestamp, metrics, labels, bundles) to the injected logger; Explain
// (what-if, any version) does neither. Run follows the active version in
// the store; until it loads one the stock policy decides.
//
// # Input
//
// input.request is what is being placed; every field is present:
//
//	kind               "server" | "volume" | ...
//	project, user      IDs of the requester
//	resource_id        broker ID of the new resource ("" when unknown)
//	name, flavor       resource name, flavor name or ID
//	resources          {vcpus, ram_mib, disk_gib}: what it takes (a volume's size is disk_gib)
//	image              {id, properties{}, min_ram_mib, min_disk_gib, peers[]}: peers = IDs of peers holding it; id "" = none
//	tags               [string]
//	hints              {required_labels{}, preferred_labels{}, other{}}: scheduler hints
//	availability_zone  "" or a peer name
//	deployment         {id, template, resource, replica}: the template resource it comes from ("" ids when none)
//	spread             {group, peers{peer_id: replicas}}: replicas of the group already placed, by peer; group "" = none
//	group              {id, policy, peers{peer_id: members}, max_per_peer}: the server group the server joins
//	                   (Nova's; policy affinity, anti-affinity, soft-affinity or soft-anti-affinity); id "" = none.
//	                   The engine enforces it in Go after the policy (a peer stands for Nova's host):
//	                   affinity keeps the peer the members run on, anti-affinity rejects a peer holding
//	                   max_per_peer (0: 1) of them, the soft ones order the allowed peers
//	usage              {vcpus, ram_mib, disk_gib, instances, volumes}: the project's total over every peer
//	quota              same keys; a negative limit is unlimited; {} = no quota
//	takes              same keys: what the request counts against the quota (a server 1 instance, a
//	                   volume 1 volume and its size in disk_gib; a server's root disk never counts)
//
// input.peers are the candidates, in the broker's order (a per-peer
// policy sees one of them at a time as input.peer):
//
//	id, name, kind ("local" | "openstack"), labels{}, region, status ("up" | "degraded" | "down" | "maintenance")
//	capacity           {vcpus, ram_mib, disk_gib, instances, object_bytes}: each {total, used, free}; total 0 = not reported
//	private            true for a private peer: its tier label is "private" (or "local"), or it has no
//	                   tier label and is a local cloud (policy.Private)
//	short              [dimension]: where the peer reports less free than the request takes, of
//	                   "vcpus", "ram_mib", "disk_gib", "instances" (a server takes one slot); a
//	                   dimension not reported (total 0) is never short; [] = room for it (policy.Short)
//	shortfall          {dimension: {want, free}}: the short dimensions, with what the request takes
//	                   and what is free; {} = room for it
//	room               {vcpus, ram_mib, disk_gib}: the share of the total left free once the request
//	                   is placed, in tenths rounded down (0-10), -1 when no total is reported (policy.Room)
//	cost               integer millionths of a currency unit per hour for this request: the peer's "cost"
//	                   label when it is a number, else its record's rates applied to resources
//	cost_rates         {currency, vcpu_hour, ram_gib_hour, disk_gib_month}: the record's rates
//
// private, short, shortfall and room are facts the broker derives (per
// peer and request shape, cached) so a policy's per-peer tests are
// lookups: OPA's evaluator spends about a microsecond on each builtin call
// (a comparison, an arithmetic step), per peer, per decision, and a lookup
// a fifth of that. shortfall and room are coarse: most capacity reports
// change neither, so cached verdicts that read only them stay valid. The
// raw fields stay, for policies that want other thresholds; a test input
// written by hand must carry the facts it relies on.
//
// # Output, and the two forms of a policy
//
// The policy is package cloudmux.placement. The engine tells its form
// from the compiled modules (which input paths any rule reads).
//
// The per-peer form (the stock policy's) reads input.peer, input.request
// and input.pool, never input.peers or the whole input, and defines:
//
//	request_deny    a set of reasons that rejects every peer, evaluated once per decision with
//	                input.request alone (the image does not fit the flavor, a quota)
//	deny            the set of reasons to reject input.peer, evaluated per peer (input.request and
//	                input.peer)
//	score           input.peer's score, a number 0-100 or {"score": n, "reasons": [...], "parts":
//	                {name: points}}, evaluated per allowed peer, with input.pool too
//
// input.pool holds facts over the peers the deny pass allowed (and that
// are healthy), computed by the engine in Go: allowed, private and public
// (counts), cost, private_cost and public_cost ({min, max}, {} when
// none), spread_min (the fewest replicas of request.spread's group on an
// allowed peer; 0 when one holds none or there is no group). A peer's
// verdict is cached under the policy version, the peer's ID and the
// values at every input path its rules read (with the rules and functions
// they depend on), so it is evaluated again only when one of those
// changes. What a pass reads of the peer is narrowed by the request: a
// rule whose body begins with tests of input.request alone (a guard:
// input.request.kind == "volume", or a rule that reads only the
// request) is left out of the key, with what only it reads, for the
// requests its guard fails (the stock score then keys a server on its
// RAM room, not its disk room). The peers that miss are evaluated as one batch (one alone
// without the batch), and a peer whose term changed (a capacity report)
// or that missed is evaluated in the background for the other recent
// request shapes, so the next decision of another flavor finds it. A decision over the same peers as the last one of
// its request shape finds their verdicts by comparing term pointers;
// request_deny is cached the same way, by the request values it reads.
// A policy that calls a nondeterministic built-in (time.now_ns,
// rand.intn, http.send, ...) is never cached. EngineConfig.NoVerdictCache turns the cache off
// (the reference the cached engine is tested against).
//
// The pool form reads input.peers and answers for the whole pool in one
// evaluation (request_deny is not read):
//
//	deny[peer_id]   a set of human-readable reasons; a peer with any reason is rejected, with all of them
//	score[peer_id]  a number 0-100, or {"score": n, "reasons": [...], "parts": {name: points}}, for allowed peers
//
// In either form, without "score" an object score is the sum of its parts
// (the engine adds them: an addition in Rego is a builtin call per part
// per peer, a measurable share of a decision). Filter, then score: a
// rejected peer carries every reason (request_deny's and its own, sorted),
// the engine clamps scores to 0-100 and orders the allowed peers by score,
// then name (the chosen order; the broker tries them in turn). An allowed
// peer without a score scores 0.
//
// # Stock policy
//
// policy/stock/placement.rego, in the per-peer form (with
// placement_test.rego and fixtures under data.cloudmux.fixtures; the
// pool form it had before is kept in testdata/pool, and decides every
// randomized case identically): healthy peers with room on every requested
// dimension, required labels, availability zone, image min_ram/min_disk and
// architecture, project quota over all peers; private peers (tier=private,
// or local without a tier label) score 55-100 and public ones 0-45, so
// placement is local-first and overflows to public peers, cheapest first,
// when the private ones are full; replicas of one template resource spread
// to the peers holding fewest; a peer holding the image and preferred
// labels score more.
//
// # Store
//
// Versions keeps uploads (modules, *_test.rego tests, data documents) as
// immutable versions named by their content hash under policies/versions/;
// an upload must compile and its tests must pass (CompileError lists every
// problem as file:row:col). policies/active names the active version and
// the rollback history. Decisions keeps decision records in hour buckets
// (policies/decision-records/<hour>/, found through a marker key per hour)
// with index keys per project, resource and deployment, so a query reads
// only the keys it matches; Decisions.Collect (run by the broker's garbage
// collector) bounds them by count and age, reading only the hours it
// removes from and the open ones.
package policy
