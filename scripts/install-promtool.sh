#!/usr/bin/env bash
# install-promtool.sh — make Prometheus's promtool available (from Debian's
# prometheus package) and print its path. `make lint` checks the alert
# rules in ops/prometheus with it (`promtool check rules`, and `promtool
# test rules` for their unit tests).
#
# The package is unpacked into the cache, not installed: installing it
# would start a Prometheus server listening on every interface, which a
# test machine must not do. Idempotent; serialised with the project's
# other apt users through the same lock file.
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cloudmux"
lock="$cache/.apt.lock"
mkdir -p "$cache/bin"
exec 9>"$lock"
flock 9
version=$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: *//p')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
	version=$(apt-cache policy prometheus | sed -n 's/^ *Candidate: *//p')
fi
bin="$cache/bin/promtool-${version//[^A-Za-z0-9.+-]/_}"
if [ ! -x "$bin" ]; then
	echo "unpacking promtool from Debian's prometheus $version (one time)..." >&2
	work=$(mktemp -d)
	chmod 755 "$work" # apt fetches as _apt
	trap 'rm -rf "$work"' EXIT
	(cd "$work" && apt-get download -qq "prometheus=$version" >&2)
	dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
	install -m 0755 "$work/root/usr/bin/promtool" "$bin.tmp"
	mv "$bin.tmp" "$bin"
fi
"$bin" --version >/dev/null
echo "$bin"
