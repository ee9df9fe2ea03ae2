package compute

import (
	"net/http"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// The microversions the Nova API implements, 2.1 to MaxVersion, and what
// each means here. A version that changes an API the broker does not
// serve (os-hypervisors, os-services, migrations, remote consoles...)
// changes nothing: those paths are 404
// at every version.
//
//	2.2   keypair type; create answers 201, delete 204
//	2.3   admins see reservation_id, launch_index, hostname, kernel_id,
//	      ramdisk_id, root_device_name, user_data; volumes_attached shows
//	      delete_on_termination
//	2.5   the ip6 filter
//	2.9   locked
//	2.10  admins manage other users' keypairs (user_id)
//	2.13  project_id and user_id in server groups
//	2.15  the soft-affinity and soft-anti-affinity group policies
//	2.16  host_status (admins): the peer's state
//	2.19  description on create, update, rebuild and in views
//	2.26  server tags (/servers/{id}/tags) and the tags filters
//	2.32  device tags on networks and block devices (2.32 only for block
//	      devices and to 2.36 for networks, as in Nova; again from 2.42)
//	2.35  keypair paging (limit, marker)
//	2.36  network quotas and limits gone from os-quota-sets and /limits,
//	      and the os-security-groups proxy (read only here) gone
//	2.37  networks required on create: a list, "auto" or "none"
//	2.38  an unknown status filter is 400
//	2.39  maxImageMeta gone from /limits
//	2.45  createImage answers {"image_id"} instead of a Location header
//	2.47  the flavor embedded in the server
//	2.52  tags on create
//	2.54  key_name on rebuild (null takes the key away)
//	2.55  flavor description (admins set it with PUT /flavors/{id})
//	2.57  personality gone; injected-file limits and quotas gone;
//	      user_data on rebuild
//	2.61  extra_specs in flavors
//	2.62  instance action events show host (admins: the peer) and hostId
//	2.63  trusted_image_certificates: shown (null), refused on create
//	2.64  server groups take and show one policy and its rules
//	      (max_server_per_host, anti-affinity only), not policies
//	2.66  the changes-before filter
//	2.69  servers of a peer that does not answer shown as UNKNOWN
//	2.70  device tags on os-interface and os-volume_attachments
//	2.71  server_groups in show and update
//	2.73  locked_reason; the locked filter
//	2.74  host (a peer, admins) on create; hypervisor_hostname refused
//	2.75  unknown list filters are 400; update and rebuild answer like
//	      show; a flavor's swap is 0
//	2.77  unshelve takes availability_zone: only the server's own zone
//	      (peer), as the broker does not move shelved servers; another is
//	      400, as Nova answers a zone that is not available
//	2.79  delete_on_termination on volume attachments (the volume goes
//	      with the server)
//	2.83  more filters for everyone (key_name, user_id, vm_state, ...)
//	2.85  PUT os-volume_attachments/{volume} changes delete_on_termination
//	2.89  attachment_id and bdm_uuid instead of id on volume attachments
//	2.90  hostname on create, update and rebuild, shown to everyone
//	2.91  unshelve's availability_zone may be null (nothing to unpin
//	      here); its host is refused (400): the broker picks no host
//	2.92  keypairs are imported only (public_key required)
//
// 2.92 is also what the openstack CLI (novaclient's newest) sends for
// --os-compute-api-version 2.latest without asking the server.
const (
	MinVersion = "2.1"
	MaxVersion = "2.92"
)

// at reports whether the request negotiated microversion v or later: the
// one gate every versioned behaviour of this API goes through.
func at(r *http.Request, v string) bool { return osapi.VersionAtLeast(r, v) }

// within reports whether the request negotiated a version from lo to hi.
func within(r *http.Request, lo, hi string) bool { return osapi.VersionIn(r, lo, hi) }
