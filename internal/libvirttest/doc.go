// Package libvirttest gives tests a real libvirt: a local libvirtd answering
// on qemu:///system (VMs under QEMU/TCG), the test driver inside that daemon
// for fast protocol-level tests, and a tiny bootable guest disk image.
//
// Ensure(t) runs scripts/install-libvirt.sh once per test binary: it installs
// Debian's libvirt and QEMU packages when they are missing, starts virtlogd,
// virtlockd and libvirtd by hand (no systemd), makes sure no NAT or forwarding
// network can start, and waits until the daemon answers. A libvirt that cannot
// be had fails the test instead of skipping it: CI must run these tests, and a
// silently skipped suite is how a driver rots.
//
// GuestImage(t) returns the path of the guest disk scripts/build-guest-image.sh
// builds once and caches (or $CLOUDMUX_GUEST_IMAGE, which
// scripts/test-deps.sh exports). The image is a raw, BIOS-bootable disk
// (MBR + SYSLINUX + Debian's cloud kernel + a busybox initramfs). Under
// SeaBIOS it boots in a few seconds of TCG and, on its serial console
// (ttyS0), prints the kernel's "Linux version" line, then lines starting
// with "cloudmux-guest: ". It looks for a config drive, an ISO 9660
// filesystem labelled "config-2" attached as an extra read-only virtio disk,
// prints its openstack/latest/meta_data.json, puts the static IPv4
// addresses of openstack/latest/network_data.json on the NICs with the
// matching MACs ("cloudmux-guest: net eth0 MAC ADDR/PREFIX"), and runs its
// openstack/latest/user_data with /bin/sh when that starts with "#!" (prints
// it otherwise). It powers off on the ACPI power button, so libvirt's
// shutdown and reboot work. DomainXML shows a domain definition that boots it.
//
// Nothing here is for production use; the package is internal so it cannot
// leak into the broker.
package libvirttest
