# The stock cloudmux placement policy: filter, then score, in the per-peer
# form.
#
# Input and output are documented in the policy package (doc.go). In short,
# the engine evaluates:
#   request_deny  once per decision, with input.request: reasons that reject
#                 every peer (the image does not fit the flavor, a quota);
#   deny          per peer, with input.peer and input.request: the reasons to
#                 reject input.peer;
#   score         per peer allowed, with input.pool too (facts over the peers
#                 allowed, computed by the engine): a number 0-100 or an
#                 object of parts the engine adds.
#
# A peer's deny and score are cached by the engine under the input fields
# they read (found from the compiled policy), so they are evaluated again
# only when one of those changes. Capacity reaches these rules as coarse
# facts the broker derives: input.peer.shortfall (only the dimensions where
# the peer lacks room) and input.peer.room (the share left after placement,
# in tenths): a capacity report that changes neither leaves the verdicts
# cached. What changes on every request (usage against quota) is read only
# by request_deny.
package cloudmux.placement

# ---- request: once per decision -------------------------------------------

# An image that needs more RAM or disk than the flavor gives fits nowhere.
# A flavor with no disk boots from a volume, so min_disk is not its concern.
request_deny contains sprintf("image %s needs %d MiB of RAM, the flavor has %d", [input.request.image.id, input.request.image.min_ram_mib, input.request.resources.ram_mib]) if {
	input.request.image.min_ram_mib > input.request.resources.ram_mib
}

request_deny contains sprintf("image %s needs %d GiB of disk, the flavor has %d", [input.request.image.id, input.request.image.min_disk_gib, input.request.resources.disk_gib]) if {
	input.request.resources.disk_gib > 0
	input.request.image.min_disk_gib > input.request.resources.disk_gib
}

# The project's quota spans every peer: usage is the project's total, and
# takes what the request counts against it (derived by the broker: a server
# is an instance, a volume a volume and its gigabytes; a server's root disk
# never counts against gigabytes, as in Cinder). The broker enforces these
# limits itself before it asks (with reservations, so concurrent requests
# cannot pass them); this rule lets a policy see why a request is refused,
# and a stricter policy may tighten it.
request_deny contains sprintf("project quota for %s exceeded: %d used + %d requested > %d allowed", [dim, used, want, limit]) if {
	some dim, limit in input.request.quota
	limit >= 0
	want := input.request.takes[dim]
	want > 0
	used := object.get(input.request.usage, dim, 0)
	used + want > limit
}

# ---- filter: per peer -----------------------------------------------------

# Only healthy peers take new work.
deny contains sprintf("status is %s", [input.peer.status]) if {
	input.peer.status != "up"
	input.peer.status != "degraded"
}

# Enough free capacity on every dimension the request takes: shortfall
# lists the dimensions where the peer reports less free than the request
# needs (a peer that reports no total has not said, and is trusted; a
# server takes an instance slot), with what it needs and what is free.
deny contains sprintf("needs %d vCPUs, %d free", [s.want, s.free]) if s := input.peer.shortfall.vcpus

deny contains sprintf("needs %d MiB of RAM, %d free", [s.want, s.free]) if s := input.peer.shortfall.ram_mib

deny contains sprintf("needs %d GiB of disk, %d free", [s.want, s.free]) if s := input.peer.shortfall.disk_gib

deny contains "no instance slots free" if input.peer.shortfall.instances

# Every required label (scheduler hint) must be on the peer.
deny contains sprintf("lacks required label %s=%s", [k, v]) if {
	some k, v in input.request.hints.required_labels
	object.get(input.peer.labels, k, null) != v
}

# Each peer is an availability zone, named by its name (or its
# availability_zone label).
deny contains sprintf("not availability zone %q", [az]) if {
	az := input.request.availability_zone
	az != ""
	input.peer.name != az
	object.get(input.peer.labels, "availability_zone", "") != az
}

# An image built for one architecture runs only where peers say they offer
# it (label arch), when they say.
deny contains sprintf("image architecture %s, peer offers %s", [arch, input.peer.labels.arch]) if {
	arch := input.request.image.properties.architecture
	input.peer.labels.arch != arch
}

# ---- score: per peer allowed ----------------------------------------------

# A private peer scores 55-100, a public one 0-45, so any allowed private
# peer outranks every public one (local-first bursting), and the broker
# falls back to the next allowed peer, the cheapest public one, when the
# private ones are full. input.peer.private is true for tier=private (or
# local), or a local cloud without a tier label. A score is its parts: the
# engine adds them.

# Private: 55, plus the room left after placement on the dimension the
# request needs most, 0-10.
score := {"parts": {"private": 55, "room": room, "shared": shared, "health": health}} if input.peer.private == true

# Public: the cost, cheapest of the allowed public peers 10, dearest 0.
score := {"parts": {"cost": cost, "shared": shared, "health": health}} if input.peer.private == false

# The dimension room is scored on: disk for what lives on disk, memory for
# the rest.
main_dim := object.get({"volume": "disk_gib", "image": "disk_gib"}, input.request.kind, "ram_mib")

# room is in tenths (0-10), or -1 where the peer reports no total: unknown
# capacity is neither best nor worst.
room := 5 if {
	main_room < 0
} else := main_room

# Each dimension is read by name, not as input.peer.room[main_dim]: a
# score is cached under the values its rules read, and a variable key
# reads every dimension's room, vCPUs' too, which changes most often.
main_room := input.peer.room.disk_gib if main_dim == "disk_gib"

main_room := input.peer.room.ram_mib if main_dim == "ram_mib"

# Costs are integer millionths of a currency unit per hour; the span is at
# least 1 so equal costs all score 10.
cost := 10 - idiv((input.peer.cost - input.pool.public_cost.min) * 10, max([input.pool.public_cost.max - input.pool.public_cost.min, 1]))

# idiv is integer division, rounding down. Integers stay on OPA's fast
# arithmetic path; "/" of integers that do not divide evenly goes through
# math/big.
idiv(x, y) := (x - (x % y)) / y

health := {"up": 5, "degraded": 0}[input.peer.status]

# The shared part, 0-30: spread 20, preferred labels 5, image 5.
shared := (spread_points + label_points) + image_points

# Replicas of one template resource spread: the peers holding the fewest
# replicas of the group (input.pool.spread_min, over the peers allowed)
# score 20, one more 10, more 0.
spread_points := 20 if {
	input.request.spread.group == ""
} else := max([0, 20 - (10 * (n - input.pool.spread_min))]) if {
	n := input.request.spread.peers[input.peer.id]
	n > input.pool.spread_min
} else := 20

# Preferred labels: 5 for holding all, in proportion for some.
label_points := 5 if {
	count(input.request.hints.preferred_labels) == 0
} else := round((5 * count([k | some k, v in input.request.hints.preferred_labels; input.peer.labels[k] == v])) / count(input.request.hints.preferred_labels))

# The image: 5 where it is already held (or when there is none).
image_points := 5 if {
	input.request.image.id == ""
} else := 5 if {
	input.peer.id in input.request.image.peers
} else := 0
