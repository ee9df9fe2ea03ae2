// Package libvirt is the local cloud's real hypervisor driver: a
// localcloud.Driver over libvirtd, through github.com/digitalocean/go-libvirt
// (the pure-Go RPC client; no cgo, no libvirt C library).
//
// # Connections
//
// One connection per host URI, opened on first use: qemu:///system and
// test:///default through the local unix socket, qemu+tcp://host/system
// over TCP port 16509 (tls and ssh through go-libvirt's ConnectToURI). The
// client calls the driver makes are declared as the API interface, so
// tests wrap them. go-libvirt takes no contexts, so every call runs in a
// goroutine bounded by ctx and Config.CallTimeout (uploads only by ctx). A
// call that outlives its timeout means libvirtd went silent: the socket is
// cut and the call fails with peers.ErrUnavailable. When the connection
// drops (libvirtd restarts: go-libvirt closes Disconnected()), the next
// call redials; while the daemon is down calls fail at once with
// peers.ErrUnavailable, and what was checked on the old connection (the
// pool) is checked again on the new one. Both are tested for real: a test
// stops and restarts libvirtd under a connected cloud, and another runs a
// cloud over qemu:///system and qemu+tcp://127.0.0.1/system at once.
//
// # Naming and metadata
//
// Everything the driver makes is named Config.Prefix (default "cloudmux-")
// plus the cloud's ID: domain cloudmux-<server>, pool volumes
// cloudmux-<volume>. Domains carry a
// <metadata> element in the MetadataNS namespace with the server's ID,
// name, key name, every DomainSpec.Metadata entry (the cloud's project,
// flavor, image, creation time; the server's own metadata, broker ID
// included, under "server.") and the disks and NICs as the cloud sees them;
// Inventory reads all of it back. libvirt 9.0 has no metadata on storage
// volumes, so for those the name (the cloud's ID) is all there is.
//
// # Guest networks
//
// Guest networking is the driver's user-space switch (localcloud/vswitch),
// never the host's kernel: each NIC is an <interface type='udp'> (QEMU's
// socket netdev) sending its frames to its port on the switch, which
// listens on Config.SwitchAddr (127.0.0.1 by default; QEMU binds the NIC's
// side on Config.NICAddrs[host], by default the same address). Networks
// (CreateNetwork) and port filters (SetPortFilter: the security groups)
// are switch state only: the driver makes no libvirt network, no nwfilter,
// no bridge or tap device, and no ip(6)tables rule, so the host's firewall
// and forwarding are never touched (TestGuestNetworking and
// TestSecurityGroupsEnforced compare them before and after). Routers
// and floating IPs (the RouterDriver) run in the switch too, routing and
// NAT in user space (TestRouterDataPlane). The switch is shared by all
// hosts: guests of one network talk across hosts too.
//
// A NIC's two UDP addresses are in the domain's metadata (switch= and
// nic= on its cmx:nic), so Inventory, which the cloud's Recover calls at
// start-up, reopens every defined domain's ports where they were: running
// guests carry on after a broker restart, having lost the frames in
// flight. Ports of filtered NICs drop all IP traffic until the cloud hands
// their filters over again (Recover does).
//
// Domains an earlier version defined with NICs on libvirt networks
// (type='network', with nwfilter filterrefs) are redefined by Inventory
// with their NICs on switch ports. A running one keeps its old NICs,
// cut off from the switch, until it is stopped and started; once none of
// the cloud's running domains uses them, Inventory removes the libvirt
// networks named with the prefix and those domains' nwfilters.
//
// # Storage
//
// One dir pool per host (Config.Pool, default "cloudmux", at
// Config.PoolPath, default /var/lib/cloudmux/pool), defined, built,
// autostarted and started where missing. An image reaches a host once, as
// a base volume holding its bytes verbatim (streamed with StorageVolUpload,
// never buffered whole); root disks and volumes made from it are qcow2
// overlays on that base (backingStore), sized by the flavor or the volume.
// Blank volumes are sparse qcow2. ResizeVolume grows a volume with
// StorageVolResize, or with DomainBlockResize when it is attached to a
// running guest, which then sees the new size at once.
//
// # Domains
//
// Domains are <domain type='qemu'> (TCG: no KVM needed), machine "pc",
// virtio disks from the pool (their format read from the pool), virtio
// NICs with the port's MAC on their switch ports, and a config drive: an
// ISO 9660 image labelled config-2 with openstack/latest/meta_data.json
// (uuid, name, hostname, public_keys, meta), user_data and
// network_data.json (static addresses: the networks run no DHCP), uploaded
// as a small raw pool volume and attached read-only as vdz. It goes with
// the domain (UndefineDomain).
//
// # Console
//
// The serial console is a <serial type='file'> whose file (written by
// virtlogd) is in the pool directory, named cloudmux-<server>-console.log.
// On a host reached through the local socket ConsoleOutput reads the file
// directly. On a remote host it refreshes the pool and downloads the log
// volume with StorageVolDownload, spoken by a minimal RPC client of the
// driver's own (download.go) on a socket it closes when done: go-libvirt's
// stream code can deadlock a connection, and leak its goroutines for good,
// when libvirtd sends one more packet after the empty one go-libvirt takes
// for the end of a download (seen with a log being appended to; the
// router holds its lock while handing the packet to a caller that has
// left). The log is removed with the domain.
//
// # The test driver
//
// test:///default (through libvirtd) has no storage data path and cannot
// hotplug: there uploads are read and dropped, resizes and console reads do
// nothing, and disks are attached and detached by redefining the domain,
// so the whole cloud runs over it at protocol level.
package libvirt
