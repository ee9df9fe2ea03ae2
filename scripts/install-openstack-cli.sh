#!/usr/bin/env bash
# install-openstack-cli.sh — make the real `openstack` CLI (Debian's
# python3-openstackclient, with python3-heatclient for `openstack stack`)
# available and print its path. Tests drive it against the broker, as
# users would.
set -euo pipefail
heat=/usr/lib/python3/dist-packages/heatclient
if [ -x /usr/bin/openstack ] && [ -d "$heat" ]; then
	echo /usr/bin/openstack
	exit 0
fi
lock="${XDG_CACHE_HOME:-$HOME/.cache}/cloudmux/.apt.lock"
mkdir -p "$(dirname "$lock")"
exec 9>"$lock"
flock 9
if [ ! -x /usr/bin/openstack ] || [ ! -d "$heat" ]; then
	echo "installing python3-openstackclient and python3-heatclient (one time)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	# Wait for dpkg's own lock too: another installer (libvirt's) may hold it.
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends python3-openstackclient python3-heatclient >&2
fi
echo /usr/bin/openstack
