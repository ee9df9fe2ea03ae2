# Tests of the stock policy, run by `go test ./policy` and by
# `cloudmux policy test` (same semantics as `opa test`). The fixtures are
# data.cloudmux.fixtures: a base request and four peers (private, cheap,
# dear, down).
package cloudmux.placement_test

import data.cloudmux.fixtures
import data.cloudmux.placement

peers := [fixtures.peers.private, fixtures.peers.cheap, fixtures.peers.dear, fixtures.peers.down]

input_with(patch) := {"request": object.union(fixtures.request, patch), "peers": peers}

# A stock score is its parts; the engine adds them.
total(s) := sum([n | some n in s.parts])

order(inp) := [id |
	scores := placement.score with input as inp
	ranked := sort([[0 - total(s), id] | some id, s in scores])
	some pair in ranked
	id := pair[1]
]

test_down_peer_denied if {
	reasons := placement.deny["p-down"] with input as input_with({})
	reasons == {"status is down"}
}

test_private_first if {
	order(input_with({})) == ["p-private", "p-cheap", "p-dear"]
}

test_private_full_bursts_to_cheapest_public if {
	# short is what the broker derives from the capacity for this request.
	full := object.union(fixtures.peers.private, {"capacity": {"ram_mib": {"total": 32768, "used": 32768, "free": 0}}, "short": ["ram_mib"]})
	inp := {"request": fixtures.request, "peers": [full, fixtures.peers.cheap, fixtures.peers.dear]}
	placement.deny["p-private"] with input as inp
	order(inp) == ["p-cheap", "p-dear"]
}

test_required_label if {
	inp := input_with({"hints": {"required_labels": {"gpu": "a100"}}})
	order(inp) == ["p-dear"]
	"lacks required label gpu=a100" in placement.deny["p-private"] with input as inp
}

test_availability_zone if {
	order(input_with({"availability_zone": "cheap"})) == ["p-cheap"]
}

test_image_min_ram_denies_everywhere if {
	inp := input_with({"image": {"id": "img", "min_ram_mib": 4096}})
	order(inp) == []
	count(placement.deny) == 4 with input as inp
}

test_quota_spans_peers if {
	inp := input_with({"usage": {"vcpus": 9}, "quota": {"vcpus": 10}})
	some reason in placement.deny["p-cheap"] with input as inp
	contains(reason, "project quota for vcpus exceeded")
}

# gigabytes are Cinder's: a server's root disk never counts against them,
# a volume's size does.
test_server_root_disk_not_gigabytes if {
	inp := input_with({"usage": {"disk_gib": 1000}, "quota": {"disk_gib": 1000}})
	order(inp) == ["p-private", "p-cheap", "p-dear"]
}

test_volume_counts_gigabytes if {
	inp := input_with({"kind": "volume", "usage": {"disk_gib": 1000}, "quota": {"disk_gib": 1000}})
	some reason in placement.deny["p-cheap"] with input as inp
	contains(reason, "project quota for disk_gib exceeded")
}

test_spread_prefers_peer_without_replica if {
	second := object.union(fixtures.peers.private, {"id": "p-private2", "name": "private2"})
	inp := {
		"request": object.union(fixtures.request, {"spread": {"group": "d1/web", "peers": {"p-private": 1}}}),
		"peers": [fixtures.peers.private, second],
	}
	order(inp) == ["p-private2", "p-private"]
}

test_scores_in_range if {
	scores := placement.score with input as input_with({})
	count(scores) == 3
	every _, s in scores {
		total(s) >= 0
		total(s) <= 100
	}
}
