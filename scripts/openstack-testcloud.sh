#!/usr/bin/env bash
# openstack-testcloud.sh — bring up the shared real OpenStack (Zed: Keystone,
# Glance, Placement, Nova with the fake virt driver, Neutron server, Cinder
# with a fake volume driver) that peers/openstack's tests run against, and
# print `export` lines for them:
#   CLOUDMUX_OPENSTACK_CLOUDS  a clouds.yaml with two entries:
#       testcloud        a member of project cloudmux-test (a tenant's view)
#       testcloud-admin  admin of project admin
#   CLOUDMUX_OPENSTACK_CLOUD   the entry the conformance suite uses (testcloud)
#
# It runs ../shared/tools/openstack-testcloud/up.sh (idempotent: ~4 min and
# ~2.6 GiB the first time, seconds to a minute after) when ../shared sits
# beside this repository, as in CI. Without ../shared it prints no export
# and says so on stderr: those tests then skip, naming this script.
#
# Use: eval "$(./scripts/openstack-testcloud.sh)"
# Progress goes to stderr; stdout carries only the export lines.
# Knobs: TESTCLOUD_DIR (default /var/tmp/openstack-testcloud),
# TESTCLOUD_PASSWORD (default secret), ENABLE_CINDER (default 1),
# ENABLE_HEAT (default 0: nothing here needs Heat).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
tools="$(dirname "$repo")/shared/tools/openstack-testcloud"

if [ ! -x "$tools/up.sh" ]; then
	echo "openstack-testcloud: $tools/up.sh not found (no ../shared beside the repository):" \
		"the tests against a real OpenStack will skip" >&2
	exit 0
fi

export ENABLE_HEAT=${ENABLE_HEAT:-0}
export TESTCLOUD_DIR=${TESTCLOUD_DIR:-/var/tmp/openstack-testcloud}
export TESTCLOUD_PASSWORD=${TESTCLOUD_PASSWORD:-secret}
as_root=()
if [ "$(id -u)" != 0 ]; then
	if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
		echo "openstack-testcloud: up.sh must run as root and sudo is not available" >&2
		exit 1
	fi
	as_root=(sudo -n -E)
fi

echo "openstack-testcloud: running $tools/up.sh (first time ~4 min)..." >&2
"${as_root[@]}" "$tools/up.sh" >&2

# A non-admin project and user: a remote cloud is usually reached as a
# tenant, and the driver must behave with what a tenant sees.
openrc="$TESTCLOUD_DIR/admin-openrc"
project=cloudmux-test
user=cloudmux-test
(
	# shellcheck disable=SC1090
	. "$openrc"
	osc() { /usr/bin/openstack "$@"; }
	osc project show "$project" -f value -c id >/dev/null 2>&1 ||
		osc project create --domain Default --description "cloudmux peers/openstack tests" "$project" >/dev/null
	osc user show --domain Default "$user" -f value -c id >/dev/null 2>&1 ||
		osc user create --domain Default --password "$TESTCLOUD_PASSWORD" "$user" >/dev/null
	osc role add --project "$project" --user "$user" member >/dev/null
	# Every broker project with a server on the testcloud has its security
	# groups mirrored into this one project, and the suites run in parallel:
	# Neutron's default quota (10 groups, 100 rules) is a single tenant's.
	osc quota set --secgroups 200 --secgroup-rules 2000 "$project" >/dev/null
) >&2

clouds="$TESTCLOUD_DIR/cloudmux-clouds.yaml"
umask 077
cat >"$clouds.tmp" <<EOF
# written by cloudmux scripts/openstack-testcloud.sh
clouds:
  testcloud:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: $user
      password: $TESTCLOUD_PASSWORD
      project_name: $project
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
  testcloud-admin:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: admin
      password: $TESTCLOUD_PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
EOF
mv "$clouds.tmp" "$clouds"
echo "openstack-testcloud: ready; clouds.yaml at $clouds" >&2
echo "export CLOUDMUX_OPENSTACK_CLOUDS=$clouds"
echo "export CLOUDMUX_OPENSTACK_CLOUD=testcloud"
