#!/usr/bin/env bash
# install-chromium.sh — make Debian's `chromium` available and print its
# path. The dashboard's browser tests (broker/ui, chromedp) drive it
# headless; never a downloaded browser.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
	echo /usr/bin/chromium
	exit 0
fi
lock="${XDG_CACHE_HOME:-$HOME/.cache}/cloudmux/.apt.lock"
mkdir -p "$(dirname "$lock")"
exec 9>"$lock"
flock 9
if [ ! -x /usr/bin/chromium ]; then
	echo "installing chromium (one time)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	# Wait for dpkg's own lock too: another installer (libvirt's) may hold it.
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2
fi
echo /usr/bin/chromium
