# shellcheck shell=bash
# lib.sh — shell helpers shared by install-libvirt.sh and build-guest-image.sh.
# Sourced, not run. Everything prints to stderr: callers keep stdout for the
# lines their own callers parse. Set CMX_PROG before sourcing.

cmx_log() { echo "$CMX_PROG: $*" >&2; }
cmx_die() {
	echo "$CMX_PROG: error: $*" >&2
	exit 1
}

# cmx_missing_packages PKG... prints the packages dpkg does not have installed.
cmx_missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' || echo "$p"
	done
	return 0
}

CMX_APT_UPDATED=
# cmx_apt_update runs `apt-get update` at most once per script run; it
# returns non-zero when that fails.
cmx_apt_update() {
	[ -n "$CMX_APT_UPDATED" ] && return 0
	cmx_log "apt-get update"
	if ! DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >&2; then
		cmx_log "apt-get update failed"
		return 1
	fi
	export CMX_APT_UPDATED=1
}

# cmx_apt_install PKG... installs the packages that are missing (none missing:
# no apt at all). Concurrent callers serialise on one lock, and apt's own lock
# is waited for. Maintainer scripts may not start services while it runs
# (install-libvirt.sh starts the daemons itself, once it has made sure no NAT
# network can autostart).
cmx_apt_install() {
	local missing policy=/usr/sbin/policy-rc.d made_policy='' status=0
	missing=$(cmx_missing_packages "$@")
	[ -z "$missing" ] && return 0
	[ "$(id -u)" = 0 ] || cmx_die "missing packages, and only root can install them: $(echo $missing)"
	[ -d /var/lock ] || mkdir -p "$(readlink -f /var/lock)"
	exec 8>/var/lock/cloudmux-apt.lock
	flock 8
	missing=$(cmx_missing_packages "$@")
	if [ -n "$missing" ]; then
		if [ ! -e "$policy" ]; then
			printf '#!/bin/sh\n# cloudmux: no service starts during apt-get install\nexit 101\n' >"$policy"
			chmod 0755 "$policy"
			made_policy=1
		fi
		if cmx_apt_update; then
			cmx_log "apt-get install $(echo $missing)"
			DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 \
				-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
				install --no-install-recommends $missing >&2 || status=$?
		else
			status=1
		fi
		[ -n "$made_policy" ] && rm -f "$policy"
	fi
	flock -u 8
	exec 8>&-
	[ "$status" = 0 ] || cmx_die "apt-get install $(echo $missing) failed (exit $status)"
	missing=$(cmx_missing_packages "$@")
	[ -z "$missing" ] || cmx_die "still missing after apt-get install: $(echo $missing)"
}
