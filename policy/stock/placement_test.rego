# Tests of the stock policy, run by `go test ./policy` and by
# `cloudmux policy test` (same semantics as `opa test`). The fixtures are
# data.cloudmux.fixtures: a base request and four peers (private, cheap,
# dear, down).
package cloudmux.placement_test

import data.cloudmux.fixtures
import data.cloudmux.placement

peers := [fixtures.peers.private, fixtures.peers.cheap, fixtures.peers.dear, fixtures.peers.down]

request_with(patch) := object.union(fixtures.request, patch)

# What the engine does with a per-peer policy, in Rego: a peer's reasons
# are request_deny's (evaluated with the request alone) and its own deny's;
# input.pool is computed over the healthy peers allowed; score is evaluated
# per peer allowed.
reasons(req, p) := r if {
	rd := placement.request_deny with input as {"request": req}
	d := placement.deny with input as {"request": req, "peer": p}
	r := rd | d
}

allowed(req, ps) := [p | some p in ps; count(reasons(req, p)) == 0; p.status in {"up", "degraded"}]

span(costs) := {"min": min(costs), "max": max(costs)} if count(costs) > 0
else := {}

spread_min(req, al) := 0 if {
	req.spread.group == ""
} else := 0 if {
	count([n | some p in al; n := req.spread.peers[p.id]]) < count(al)
} else := min([n | some p in al; n := req.spread.peers[p.id]])

pool(req, ps) := {
	"allowed": count(al),
	"private": count([p | some p in al; p.private]),
	"public": count([p | some p in al; not p.private]),
	"cost": span([p.cost | some p in al]),
	"private_cost": span([p.cost | some p in al; p.private]),
	"public_cost": span([p.cost | some p in al; not p.private]),
	"spread_min": spread_min(req, al),
} if {
	al := allowed(req, ps)
}

scores(req, ps) := {p.id: s |
	pl := pool(req, ps)
	some p in allowed(req, ps)
	s := placement.score with input as {"request": req, "peer": p, "pool": pl}
}

# A stock score is its parts; the engine adds them.
total(s) := sum([n | some n in s.parts])

order(req, ps) := [id |
	ranked := sort([[0 - total(s), id] | some id, s in scores(req, ps)])
	some pair in ranked
	id := pair[1]
]

test_down_peer_denied if {
	reasons(fixtures.request, fixtures.peers.down) == {"status is down"}
}

test_private_first if {
	order(fixtures.request, peers) == ["p-private", "p-cheap", "p-dear"]
}

test_private_full_bursts_to_cheapest_public if {
	# shortfall and room are what the broker derives from the capacity for
	# this request.
	full := object.union(fixtures.peers.private, {
		"capacity": {"ram_mib": {"total": 32768, "used": 32768, "free": 0}},
		"short": ["ram_mib"], "shortfall": {"ram_mib": {"want": 2048, "free": 0}}, "room": {"ram_mib": 0},
	})
	reasons(fixtures.request, full) == {"needs 2048 MiB of RAM, 0 free"}
	order(fixtures.request, [full, fixtures.peers.cheap, fixtures.peers.dear]) == ["p-cheap", "p-dear"]
}

test_required_label if {
	req := request_with({"hints": {"required_labels": {"gpu": "a100"}}})
	order(req, peers) == ["p-dear"]
	"lacks required label gpu=a100" in reasons(req, fixtures.peers.private)
}

test_availability_zone if {
	order(request_with({"availability_zone": "cheap"}), peers) == ["p-cheap"]
}

# A request's own problems are found once, from the request alone, and
# reject every peer.
test_image_min_ram_denies_everywhere if {
	req := request_with({"image": {"id": "img", "min_ram_mib": 4096}})
	placement.request_deny == {"image img needs 4096 MiB of RAM, the flavor has 2048"} with input as {"request": req}
	order(req, peers) == []
	count([p | some p in peers; count(reasons(req, p)) > 0]) == 4
}

test_quota_spans_peers if {
	req := request_with({"usage": {"vcpus": 9}, "quota": {"vcpus": 10}})
	some reason in reasons(req, fixtures.peers.cheap)
	contains(reason, "project quota for vcpus exceeded")
}

# gigabytes are Cinder's: a server's root disk never counts against them,
# a volume's size does.
test_server_root_disk_not_gigabytes if {
	req := request_with({"usage": {"disk_gib": 1000}, "quota": {"disk_gib": 1000}})
	order(req, peers) == ["p-private", "p-cheap", "p-dear"]
}

test_volume_counts_gigabytes if {
	# takes is what the broker derives from the request: a volume counts
	# its size.
	req := request_with({"kind": "volume", "takes": {"disk_gib": 20, "instances": 0, "volumes": 1}, "usage": {"disk_gib": 1000}, "quota": {"disk_gib": 1000}})
	some reason in reasons(req, fixtures.peers.cheap)
	contains(reason, "project quota for disk_gib exceeded")
}

test_spread_prefers_peer_without_replica if {
	second := object.union(fixtures.peers.private, {"id": "p-private2", "name": "private2"})
	req := request_with({"spread": {"group": "d1/web", "peers": {"p-private": 1}}})
	order(req, [fixtures.peers.private, second]) == ["p-private2", "p-private"]
}

test_scores_in_range if {
	s := scores(fixtures.request, peers)
	count(s) == 3
	every _, x in s {
		total(x) >= 0
		total(x) <= 100
	}
}
