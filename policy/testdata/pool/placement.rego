# The stock cloudmux placement policy: filter, then score.
#
# Input and output are documented in the policy package (doc.go). In short:
# input.request is what is being placed, input.peers the candidates; the
# policy answers deny[peer_id] (a set of human-readable reasons; a peer with
# any reason is rejected) and score[peer_id] (0-100, or an object with score
# and parts) for the peers it allows.
#
# Every rule iterates the peers once; whatever does not depend on the peer
# (image and quota checks, the cost range of public peers, the fewest
# replicas of a spread group) is a complete rule, computed once per decision,
# so a decision costs O(peers x rules), never O(peers^2).
#
# Cost model (OPA's evaluator, per peer per decision): iterating and
# looking up a field or an object key are cheap; a builtin call (a
# comparison, arithmetic, object.get, sprintf) costs about five times as
# much, a negation ("not") more, building an object more still. So per-peer
# tests read facts the broker derives in Go (p.private, p.short), and what
# is the same for many peers is computed once and looked up.
package cloudmux.placement

# input.request and input.peers are read directly everywhere: a rule
# standing for them (req := input.request) would be a virtual document,
# and every access through it costs an evaluation.

# ---- filter ---------------------------------------------------------------

# Only healthy peers take new work.
# (Per-peer tests are written as positive comparisons: a negation ("not")
# evaluates a sub-query, several times dearer, and this runs for every peer.)
deny[p.id] contains sprintf("status is %s", [p.status]) if {
	some p in input.peers
	p.status != "up"
	p.status != "degraded"
}

# Enough free capacity on every dimension the request takes: p.short lists
# the dimensions where the peer reports less free than the request needs (a
# peer that reports no total has not said, and is trusted; a server takes an
# instance slot). Usually empty, so this costs one iteration per peer.
deny[p.id] contains short_reason(dim, p) if {
	some p in input.peers
	some dim in p.short
}

short_reason("vcpus", p) := sprintf("needs %d vCPUs, %d free", [input.request.resources.vcpus, p.capacity.vcpus.free])

short_reason("ram_mib", p) := sprintf("needs %d MiB of RAM, %d free", [input.request.resources.ram_mib, p.capacity.ram_mib.free])

short_reason("disk_gib", p) := sprintf("needs %d GiB of disk, %d free", [input.request.resources.disk_gib, p.capacity.disk_gib.free])

short_reason("instances", _) := "no instance slots free"

# Every required label (scheduler hint) must be on the peer.
deny[p.id] contains sprintf("lacks required label %s=%s", [k, v]) if {
	some k, v in input.request.hints.required_labels
	some p in input.peers
	object.get(p.labels, k, null) != v
}

# Each peer is an availability zone, named by its name (or its
# availability_zone label).
deny[p.id] contains sprintf("not availability zone %q", [az]) if {
	az := input.request.availability_zone
	az != ""
	some p in input.peers
	p.name != az
	object.get(p.labels, "availability_zone", "") != az
}

# An image that needs more RAM or disk than the flavor gives fits nowhere.
# A flavor with no disk boots from a volume, so min_disk is not its concern.
request_problems contains sprintf("image %s needs %d MiB of RAM, the flavor has %d", [input.request.image.id, input.request.image.min_ram_mib, input.request.resources.ram_mib]) if {
	input.request.image.min_ram_mib > input.request.resources.ram_mib
}

request_problems contains sprintf("image %s needs %d GiB of disk, the flavor has %d", [input.request.image.id, input.request.image.min_disk_gib, input.request.resources.disk_gib]) if {
	input.request.resources.disk_gib > 0
	input.request.image.min_disk_gib > input.request.resources.disk_gib
}

# An image built for one architecture runs only where peers say they offer
# it (label arch), when they say.
deny[p.id] contains sprintf("image architecture %s, peer offers %s", [arch, p.labels.arch]) if {
	arch := input.request.image.properties.architecture
	some p in input.peers
	p.labels.arch != arch
}

# The project's quota spans every peer: usage is the project's total. The
# broker enforces these limits itself before it asks (with reservations, so
# concurrent requests cannot pass them); this rule lets a policy see why a
# request is refused, and a stricter policy may tighten it.
need := {
	"vcpus": input.request.resources.vcpus,
	"ram_mib": input.request.resources.ram_mib,
	"disk_gib": volume_gib,
	"instances": count_of("server"),
	"volumes": count_of("volume"),
}

count_of(kind) := 1 if input.request.kind == kind
else := 0

# disk_gib is Cinder's gigabytes: volumes only. A server's root disk is its
# flavor's, never counted against it.
volume_gib := input.request.resources.disk_gib if input.request.kind == "volume"
else := 0

request_problems contains sprintf("project quota for %s exceeded: %d used + %d requested > %d allowed", [dim, used, want, limit]) if {
	some dim, limit in input.request.quota
	limit >= 0
	want := need[dim]
	want > 0
	used := object.get(input.request.usage, dim, 0)
	used + want > limit
}

# A problem of the request itself rejects every peer, with the same reason.
deny[p.id] contains msg if {
	problems := request_problems
	some msg in problems
	some p in input.peers
}

# ---- score ----------------------------------------------------------------

# Scores: a private peer scores 55-100, a public one 0-45, so any allowed
# private peer outranks every public one (local-first bursting), and the
# broker falls back to the next allowed peer, the cheapest public one, when
# the private ones are full.
#
# Scoring is most of a decision's cost, so a peer's score is a few lookups
# and sums: everything that is the same for all peers, or differs for only
# a few of them (spread, preferred labels, image), is computed once per
# decision into objects the per-peer comprehensions read through locals.

# Complete rules, evaluated once per decision: probing a partial rule with
# a bound key (deny[p.id]) would re-run every deny rule per peer.
denied := {id | some id, _ in deny}

# Without a denial (the common case when there is room) nothing is
# filtered; otherwise one negation per peer, here only.
allowed := [p | d := denied; some p in input.peers; not d[p.id]] if count(denied) > 0
else := input.peers

# A score is its parts: the engine adds them (an addition in Rego is a
# builtin call, per part, per peer).
score := object.union(private_scores, public_scores)

# Private peers first: p.private is true for tier=private (or local), or a
# local cloud without a tier label.

# Private: 55, plus the room left after placement on the dimension the
# request needs most (memory for servers, disk for volumes), 0-10.
private_scores := {p.id: {"parts": {"private": 55, "room": room, "shared": extra, "health": health}} |
	sh := shared
	base := shared_base
	hp := health_points
	ps := allowed
	some p in ps
	p.private == true
	room := room_points(p.capacity[main_dim])
	extra := object.get(sh, p.id, base)
	health := hp[p.status]
}

# Public: the cost, cheapest of the allowed public peers 10, dearest 0.
public_scores := {p.id: {"parts": {"cost": cost, "shared": extra, "health": health}} |
	sh := shared
	base := shared_base
	hp := health_points
	cp := cost_points
	ps := allowed
	some p in ps
	p.private == false
	cost := cp[p.cost]
	extra := object.get(sh, p.id, base)
	health := hp[p.status]
}

# The dimension room is scored on: disk for what lives on disk, memory for
# the rest.
main_dim := object.get({"volume": "disk_gib", "image": "disk_gib"}, input.request.kind, "ram_mib")

# Unknown capacity is neither best nor worst; a misreporting peer (used < 0)
# gets no more than the maximum.
room_points(c) := 5 if {
	c.total <= 0
} else := min([10, idiv(10 * max([c.free - input.request.resources[main_dim], 0]), c.total)])

# idiv is integer division, rounding down. Integers stay on OPA's fast
# arithmetic path; "/" of integers that do not divide evenly goes through
# math/big.
idiv(x, y) := (x - (x % y)) / y

# The distinct costs of the allowed public peers (costs are integer
# millionths of a currency unit per hour), and the points each is worth:
# computed once per cost, not once per peer (peers on one price list share
# a cost).
public_costs := {p.cost | ps := allowed; some p in ps; p.private == false}

cost_points := {c: pts |
	lo := cost_min
	span := cost_span
	some c in public_costs
	x := (c - lo) * 10
	pts := 10 - ((x - (x % span)) / span) # idiv, inline
}

cost_min := min(public_costs)

# The span is at least 1 so equal costs all score 10.
cost_span := max([max(public_costs) - cost_min, 1])

health_points := {"up": 5, "degraded": 0}

# The shared part, 0-30: spread 20, preferred labels 5, image 5. shared_base
# is what a peer gets that holds no replica, no preferred label and not the
# image; shared lists the few peers that differ.
shared_base := (20 + label_base) + image_base

label_base := 5 if count(input.request.hints.preferred_labels) == 0
else := 0

image_base := 5 if input.request.image.id == ""
else := 0

shared := {id: pts |
	base := shared_base
	sa := spread_adjust
	lp := label_points
	ip := image_points
	some id in union({object.keys(sa), object.keys(lp), object.keys(ip)})
	pts := ((base + object.get(sa, id, 0)) + object.get(lp, id, 0)) + object.get(ip, id, 0)
}

# The image: 5 more where it is already held.
image_points := {id: 5 | input.request.image.id != ""; some id in input.request.image.peers}

# Preferred labels: 5 for holding all, in proportion for some. Peers are
# iterated once per preferred label (a lookup each), and only the peers
# holding one are counted.
label_holders := {k: {p.id | ps := allowed; some p in ps; p.labels[k] == v} | some k, v in input.request.hints.preferred_labels}

label_points := {id: pts |
	n := count(input.request.hints.preferred_labels)
	n > 0
	holders := label_holders
	some id in union({ids | some ids in holders})
	held := count([k | some k, ids in holders; ids[id]])
	pts := round((5 * held) / n)
}

# Replicas of one template resource spread: the peers holding the fewest
# replicas of the group score 20, one more 10, more 0. Only peers already
# holding replicas are listed: the others hold the fewest (none), so the
# fewest is 0 unless every allowed peer holds one.
spread_held := [n | ps := allowed; sp := input.request.spread.peers; some p in ps; n := sp[p.id]]

spread_min := 0 if {
	input.request.spread.group != ""
	count(spread_held) < count(allowed)
} else := min(spread_held) if {
	input.request.spread.group != ""
}

spread_adjust := {id: delta |
	input.request.spread.group != ""
	some id, n in input.request.spread.peers
	n > spread_min
	delta := max([0, 20 - (10 * (n - spread_min))]) - 20
}
