#!/usr/bin/env bash
# bench.sh — run every benchmark (with a real Consul agent where they need
# one) and print the results as a table.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(./scripts/test-deps.sh)"
export CONSUL_BIN CLOUDMUX_GUEST_IMAGE
# The real OpenStack, for the broker-over-OpenStack and staging benchmarks.
os_env=$(./scripts/openstack-testcloud.sh)
eval "$os_env"

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
go test -run '^$' -bench . -benchtime "${BENCHTIME:-1s}" -count 1 ./... | tee "$raw" >&2

echo
printf '| %-58s | %14s | %s\n' "benchmark" "ns/op" "other metrics"
printf '|%s|%s|%s\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..16})" "---------------"
awk '/^pkg: / { pkg=$2; sub(/^github.com\/cloudmux\/cloudmux\//, "", pkg) }
/^Benchmark/ {
	name=$1; sub(/-[0-9]+$/, "", name); name=pkg "." name
	ns=""; other=""
	for (i = 3; i < NF; i += 2) {
		if ($(i+1) == "ns/op") ns = $i
		else other = other $i " " $(i+1) "  "
	}
	printf "| %-58s | %14s | %s\n", name, ns, other
}' "$raw"
