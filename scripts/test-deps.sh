#!/usr/bin/env bash
# test-deps.sh — install what `make test` needs and print `export` lines for it:
#   - a Consul binary (built from the Go module proxy once, then cached);
#   - a running local libvirtd (qemu:///system; Debian packages installed and
#     daemons started by scripts/install-libvirt.sh, no forwarding network);
#   - the test guest's disk image (scripts/build-guest-image.sh, cached);
#   - the real openstack CLI (scripts/install-openstack-cli.sh) and aws CLI
#     (scripts/install-awscli.sh);
#   - promtool, unpacked from Debian's prometheus package (scripts/install-promtool.sh);
#   - Debian's chromium, which the dashboard's browser tests drive headless
#     (scripts/install-chromium.sh).
# Progress goes to stderr; stdout carries only the export lines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Consul builds (CPU) while apt and the image build (mostly I/O) run.
consul_out=$(mktemp)
trap 'rm -f "$consul_out"' EXIT
"$here/install-consul.sh" >"$consul_out" &
consul_pid=$!

libvirt_status=0
guest_image=
"$here/install-libvirt.sh" >&2 || libvirt_status=$?
if [ "$libvirt_status" = 0 ]; then
	guest_image=$("$here/build-guest-image.sh" | tail -n 1) || libvirt_status=$?
fi
# After libvirt's apt work, not beside it: one installer at a time.
"$here/install-openstack-cli.sh" >/dev/null || {
	echo "test-deps: scripts/install-openstack-cli.sh failed" >&2
	exit 1
}
"$here/install-awscli.sh" >/dev/null || {
	echo "test-deps: scripts/install-awscli.sh failed" >&2
	exit 1
}
chromium=$("$here/install-chromium.sh") || {
	echo "test-deps: scripts/install-chromium.sh failed" >&2
	exit 1
}
promtool=$("$here/install-promtool.sh") || {
	echo "test-deps: scripts/install-promtool.sh failed" >&2
	exit 1
}

consul_status=0
wait "$consul_pid" || consul_status=$?
[ "$consul_status" = 0 ] || {
	echo "test-deps: scripts/install-consul.sh failed (exit $consul_status)" >&2
	exit 1
}
[ "$libvirt_status" = 0 ] || {
	echo "test-deps: libvirt or the guest image failed (exit $libvirt_status)" >&2
	exit 1
}
consul_bin=$(tail -n 1 "$consul_out")
# sed reads all of it: head would close the pipe early and, under pipefail,
# consul's SIGPIPE (exit 141) would fail the whole setup now and then.
"$consul_bin" version | sed -n 1p >&2
echo "export CONSUL_BIN=$consul_bin"
echo "export CLOUDMUX_GUEST_IMAGE=$guest_image"
echo "export PROMTOOL=$promtool"
echo "export CHROMIUM_BIN=$chromium"
