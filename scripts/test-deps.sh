#!/usr/bin/env bash
# test-deps.sh — install what `make test` needs and print `export` lines for it.
# Today: a Consul binary (built from the Go module proxy once, then cached).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
consul_bin=$("$here/install-consul.sh" | tail -n 1)
"$consul_bin" version | head -n 1 >&2
echo "export CONSUL_BIN=$consul_bin"
