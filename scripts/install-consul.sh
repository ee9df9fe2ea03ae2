#!/usr/bin/env bash
# install-consul.sh — make a Consul 1.14.11 binary available and print its path.
#
# Consul 1.14.11 is the last MPL-licensed release line. It is not downloaded as a
# prebuilt binary (CI has no route to release hosts); it is built from the Go
# module proxy: fetch the module, drop the replace directives that point at
# sibling directories (api, sdk, proto-public) so the published versions are used,
# and build with -mod=mod. The binary is cached so only the first run pays the
# ~4 minute build.
set -euo pipefail

version=1.14.11
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/cloudmux/bin"
cached="$cache_dir/consul-$version"

if command -v consul >/dev/null 2>&1 && consul version 2>/dev/null | grep -q "v$version"; then
	command -v consul
	exit 0
fi
if [ -x "$cached" ]; then
	echo "$cached"
	exit 0
fi

mkdir -p "$cache_dir"
# Several test packages may ask at once on a cold cache: one builds, the
# others wait for it and then find the binary.
exec 9>"$cache_dir/.consul-$version.lock"
flock 9
if [ -x "$cached" ]; then
	echo "$cached"
	exit 0
fi
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "building consul $version from the Go module proxy (one time, a few minutes)..." >&2
dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/consul@v$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	echo "install-consul: module download failed" >&2
	exit 1
fi
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"
# Drop the replace directives (single-line form) for the three sibling modules.
sed -i -E '/^replace[[:space:]]+github\.com\/hashicorp\/consul\/(api|sdk|proto-public)[[:space:]]/d' go.mod
# And the block form, should the release use one.
sed -i -E '/^[[:space:]]+github\.com\/hashicorp\/consul\/(api|sdk|proto-public)[[:space:]]+=>/d' go.mod
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$cached.tmp" . >&2
mv "$cached.tmp" "$cached"
echo "$cached"
