#!/usr/bin/env bash
# install-libvirt.sh — make a working local libvirtd (qemu:///system) available:
# install Debian's packages when they are missing, start virtlogd, virtlockd
# and libvirtd by hand when they are not running (no systemd here), and wait
# until `virsh -c qemu:///system version` answers.
#
# Network safety: no NAT or forwarding network may start. Before libvirtd
# first starts, the autostart links of forwarding networks (Debian's
# `default`, NAT) are removed; once it answers, every network with a
# <forward> element has autostart disabled, and one found running is stopped.
# /proc/sys/net/ipv4/ip_forward is never written; the script fails if it
# changed while it ran. libvirtd answers on its unix sockets and on TCP
# 127.0.0.1:16509 only (loopback; no TLS, no authentication:
# qemu+tcp://127.0.0.1/system, for tests of remote hosts; root's unix
# socket allows as much already), set in its own config file,
# /etc/libvirt/cloudmux-libvirtd.conf.
#
# Idempotent, non-interactive, safe to run concurrently (one runs, the others
# wait), and quick when everything is already up. Progress goes to stderr;
# stdout stays empty.
set -euo pipefail
CMX_PROG=install-libvirt
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=guest/lib.sh
. "$here/guest/lib.sh"

uri=qemu:///system
conf=/etc/libvirt/cloudmux-libvirtd.conf
log_file=/var/log/libvirt/libvirtd.log
wait_s=${CLOUDMUX_LIBVIRT_WAIT:-60}
# procps: pgrep, below (a minimal Debian lacks it).
packages="libvirt-daemon-system libvirt-daemon-system-sysv libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base procps"

answers() { virsh -c "$uri" version >/dev/null 2>&1; }

fwd_before=$(cat /proc/sys/net/ipv4/ip_forward)

if [ "$(id -u)" != 0 ]; then
	answers && exit 0
	cmx_die "libvirtd does not answer on $uri and only root can install or start it"
fi

[ -d /var/lock ] || mkdir -p "$(readlink -f /var/lock)"
exec 7>/var/lock/cloudmux-libvirt.lock
flock 7

cmx_apt_install $packages

running() { pgrep -x "$1" >/dev/null 2>&1; }

# Forwarding networks must not autostart: file level, while libvirtd is down.
if ! running libvirtd; then
	for link in /etc/libvirt/qemu/networks/autostart/*.xml; do
		[ -e "$link" ] || [ -L "$link" ] || continue
		def=/etc/libvirt/qemu/networks/${link##*/}
		if [ ! -f "$def" ] || grep -q '<forward' "$def"; then
			cmx_log "disabling autostart of network ${link##*/} (not isolated)"
			rm -f "$link"
		fi
	done
fi

# /dev/kvm as udev would leave it (root:kvm 0660; there is no udev here).
# With it root-only, libvirt's QEMU capabilities cache never validates (the
# probe sees KVM, the qemu user cannot open /dev/kvm) and every call that needs
# them (virConnectGetVersion, domain define/start) re-probes QEMU for ~4 s.
# Guests still run as <domain type='qemu'> (TCG): KVM guests do not boot here.
if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
	if [ "$(stat -c %G:%a /dev/kvm)" != kvm:660 ]; then
		cmx_log "/dev/kvm: root:kvm 0660 (as udev would set it)"
		if ! { chgrp kvm /dev/kvm && chmod 0660 /dev/kvm; }; then
			cmx_log "WARNING: cannot set /dev/kvm permissions; libvirt calls will be slow"
		fi
	fi
fi

# libvirtd's own settings; /etc/libvirt/libvirtd.conf stays as Debian ships
# it. TCP on loopback only, unauthenticated; no TLS listener (it would need
# certificates).
mkdir -p /etc/libvirt
printf '%s\n' \
	'# Written by cloudmux scripts/install-libvirt.sh: libvirtd runs with -l -f on this file.' \
	'listen_tls = 0' 'listen_tcp = 1' 'listen_addr = "127.0.0.1"' 'auth_tcp = "none"' >"$conf.tmp"
mv "$conf.tmp" "$conf"

# start_daemon NAME ARGS...: `NAME -d ARGS` with nothing of ours inherited: daemons keep
# every descriptor above 2 they are given (our lock, a caller's pipe a test
# harness waits on), so the child closes them all first; its own stdio goes
# to /var/log/libvirt/NAME.start.log.
start_daemon() {
	local d=$1 start_log=/var/log/libvirt/$1.start.log
	shift
	mkdir -p /var/log/libvirt
	(
		for fd in "/proc/$BASHPID/fd/"*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
		done
		exec "$d" -d "$@"
	) </dev/null >>"$start_log" 2>&1 ||
		cmx_die "$d -d failed; last lines of $start_log and /var/log/libvirt/$d.log:
$(tail -n 10 "$start_log" 2>/dev/null)
$(tail -n 20 "/var/log/libvirt/$d.log" 2>/dev/null)"
}
for d in virtlogd virtlockd libvirtd; do
	if ! running "$d"; then
		cmx_log "starting $d"
		if [ "$d" = libvirtd ]; then
			start_daemon "$d" -l -f "$conf"
		else
			start_daemon "$d"
		fi
	fi
done

deadline=$(($(date +%s) + wait_s))
until answers; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		err=$(virsh -c "$uri" version 2>&1 >/dev/null || true)
		cmx_die "libvirtd did not answer on $uri within ${wait_s}s: $err
daemons running: $(pgrep -a -x 'libvirtd|virtlogd|virtlockd' | tr '\n' ';')
last lines of $log_file:
$(tail -n 30 "$log_file" 2>/dev/null)"
	fi
	sleep 0.3
done

# Through libvirt: no network with a <forward> (nat, route, open, bridge...)
# autostarts or runs. Tests create and delete networks concurrently: one
# gone between the listing and a look at it is fine.
net_exists() { virsh -c "$uri" net-info "$1" >/dev/null 2>&1; }
for net in $(virsh -c "$uri" net-list --all --name); do
	xml=$(virsh -c "$uri" net-dumpxml "$net" 2>/dev/null) || continue
	grep -q '<forward' <<<"$xml" || continue
	info=$(virsh -c "$uri" net-info "$net" 2>/dev/null) || continue
	if grep -Eq '^Autostart:[[:space:]]+yes' <<<"$info"; then
		cmx_log "disabling autostart of network $net (not isolated)"
		virsh -c "$uri" net-autostart "$net" --disable >/dev/null ||
			! net_exists "$net" || cmx_die "cannot disable autostart of network $net"
	fi
	if grep -Eq '^Active:[[:space:]]+yes' <<<"$info"; then
		cmx_log "WARNING: network $net forwards traffic off this machine and was running: stopping it"
		virsh -c "$uri" net-destroy "$net" >/dev/null ||
			! net_exists "$net" || cmx_die "cannot stop network $net"
	fi
done

fwd_after=$(cat /proc/sys/net/ipv4/ip_forward)
if [ "$fwd_after" != "$fwd_before" ]; then
	cmx_die "net.ipv4.ip_forward changed from $fwd_before to $fwd_after while libvirt was set up (a forwarding network started?); refusing to go on"
fi

cmx_log "$(virsh -c "$uri" version 2>/dev/null | grep -E 'library|hypervisor' | sed 's/^ *//' | paste -sd ';' -)"
