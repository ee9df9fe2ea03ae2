#!/usr/bin/env bash
# boot-test.sh DISK [LOG] — boot the guest disk under qemu (TCG, SeaBIOS, no
# libvirt) with a config drive built here (ISO 9660 labelled config-2 on a
# read-only virtio disk, user_data `echo hello-from-user-data`, a static
# address in network_data.json for the one NIC, which sits on an in-qemu hub
# with nothing else on it), and check the serial console shows the kernel
# line, the config drive, the address and the user data's output. The disk is opened with snapshot=on: it is never written. The
# console transcript goes to LOG (default: a temporary file) and, on failure,
# to stderr. Exit 0 when the guest did all of it within the deadline
# (CLOUDMUX_GUEST_BOOT_TIMEOUT seconds, default 180).
set -euo pipefail
CMX_PROG=guest-boot-test
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

disk=${1:?usage: boot-test.sh DISK [LOG]}
[ -f "$disk" ] || cmx_die "$disk: no such file"
timeout_s=${CLOUDMUX_GUEST_BOOT_TIMEOUT:-180}
command -v qemu-system-x86_64 >/dev/null || cmx_die "qemu-system-x86_64 not installed (scripts/install-libvirt.sh installs it)"
cmx_apt_install genisoimage

work=$(mktemp -d)
qpid=
cleanup() {
	if [ -n "$qpid" ]; then
		kill "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
log=${2:-$work/console.log}
: >"$log"

mkdir -p "$work/cd/openstack/latest"
cat >"$work/cd/openstack/latest/meta_data.json" <<'JSON'
{"uuid": "00000000-0000-4000-8000-000000000001", "name": "boot-test", "hostname": "boot-test", "meta": {"cloudmux_broker_id": "boot-test"}}
JSON
printf '#!/bin/sh\necho hello-from-user-data\n' >"$work/cd/openstack/latest/user_data"
cat >"$work/cd/openstack/latest/network_data.json" <<'JSON'
{"links": [{"id": "tap0", "type": "phy", "ethernet_mac_address": "52:54:00:C3:00:01"}], "networks": [{"id": "network0", "link": "tap0", "type": "ipv4", "ip_address": "10.77.0.5", "netmask": "255.255.255.0", "routes": [], "network_id": "boot-test"}], "services": []}
JSON
genisoimage -quiet -o "$work/config.iso" -V config-2 -r -J "$work/cd"

start=$(date +%s%3N)
qemu-system-x86_64 -machine pc,accel=tcg -m 256 -smp 1 \
	-nodefaults -no-user-config -display none -monitor none -no-reboot \
	-serial "file:$log" \
	-drive "file=$disk,format=raw,if=virtio,snapshot=on" \
	-drive "file=$work/config.iso,format=raw,if=virtio,readonly=on" \
	-netdev hubport,id=n0,hubid=0 -device virtio-net-pci,netdev=n0,mac=52:54:00:c3:00:01 \
	>"$work/qemu.out" 2>&1 9>&- &
qpid=$!

ok=
deadline=$(($(date +%s) + timeout_s))
while [ "$(date +%s)" -lt "$deadline" ]; do
	if grep -q '^cloudmux-guest: done' "$log"; then
		ok=1
		sleep 0.3 # the rest of the line
		break
	fi
	if ! kill -0 "$qpid" 2>/dev/null; then
		break
	fi
	sleep 0.2
done
elapsed=$((($(date +%s%3N) - start) / 100)); elapsed="$((elapsed / 10)).$((elapsed % 10))"

fail() {
	echo "---- guest console ($log) ----" >&2
	cat "$log" >&2
	echo "---- qemu ----" >&2
	cat "$work/qemu.out" >&2
	cmx_die "$*"
}
[ -n "$ok" ] || fail "guest did not print 'cloudmux-guest: done' within ${timeout_s}s"
grep -q 'Linux version ' "$log" || fail "no kernel 'Linux version' line"
grep -q '^cloudmux-guest: kernel ' "$log" || fail "no 'cloudmux-guest: kernel' line"
grep -q '^cloudmux-guest: config drive found' "$log" || fail "config drive not found by the guest"
grep -q '"cloudmux_broker_id": "boot-test"' "$log" || fail "meta_data.json not printed"
grep -q '^hello-from-user-data' "$log" || fail "user_data did not run"
grep -q '^cloudmux-guest: net eth0 52:54:00:c3:00:01 10.77.0.5/24' "$log" || fail "network_data.json not applied"
cmx_log "guest booted, found its config drive and ran its user data in ${elapsed}s"
