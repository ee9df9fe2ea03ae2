#!/usr/bin/env bash
# install-awscli.sh — make the real `aws` CLI (Debian's awscli) available
# and print its path. The EC2 tests drive it against the broker's /ec2/
# endpoint, as users would. Idempotent; serialised with the project's other
# apt installers through the same lock file.
set -euo pipefail
if [ -x /usr/bin/aws ]; then
	echo /usr/bin/aws
	exit 0
fi
lock="${XDG_CACHE_HOME:-$HOME/.cache}/cloudmux/.apt.lock"
mkdir -p "$(dirname "$lock")"
exec 9>"$lock"
flock 9
if [ ! -x /usr/bin/aws ]; then
	echo "installing awscli (one time)..." >&2
	export DEBIAN_FRONTEND=noninteractive
	# Wait for dpkg's own lock too: another installer may hold it.
	apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
	apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends awscli >&2
fi
echo /usr/bin/aws
