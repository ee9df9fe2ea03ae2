// Package localcloud is cloudmux's own cloud: virtual machines on one or
// more hypervisor hosts, with the compute, image, volume and network
// services an OpenStack user expects, behind the peers.Cloud contract (plus
// peers.ImageData, peers.ConsoleReader, peers.Objects, peers.ServerResizer,
// peers.ServerStateResetter, peers.ServerImager and peers.SecurityGroups,
// compiled into a filter per guest NIC: secgroups.go, enforced by the
// real driver's user-space switch, localcloud/vswitch). Server actions follow Nova's state checks
// (serverops.go): pause freezes the domain, suspend is libvirt's managed
// save, resize is offline on the same host (resize.go), a snapshot copies
// the root disk on its host and streams the copy into the image store as
// qcow2 (serverimage.go).
//
// The split of work follows OpenStack's: Cloud is the control plane (Nova's
// API and scheduler, Glance, Cinder's API, Neutron's IPAM). It validates
// requests, hands out UUIDs, runs the status state machines, accounts
// capacity per host with overcommit ratios, picks hosts, allocates fixed IPs
// and stores image bytes in files under Config.DataDir, and object storage
// (peers.Objects) beside them (objstore.go). What touches a
// hypervisor goes through the small Driver interface (domains, pool volumes,
// isolated networks, console), implemented for real by localcloud/libvirt
// and in memory by localcloud/fake.
//
// Calls that OpenStack answers with 202 (server boot and power actions,
// volume creation, attach, detach, deletes of servers and volumes) return at
// once with a transitional status and finish in a background goroutine that
// lives as long as the Cloud; Close cancels and waits for them.
//
// State is in memory, behind one mutex, for now: a later change rebuilds it
// from what the driver reports (DomainSpec.Metadata carries what that needs).
package localcloud
