// Package libvirttest gives tests a real libvirt: a local libvirtd answering
// on qemu:///system (VMs under QEMU/TCG), the test driver inside that daemon
// for fast protocol-level tests, and a tiny bootable guest disk image.
//
// Ensure(t) runs scripts/install-libvirt.sh once per test binary: it installs
// Debian's libvirt and QEMU packages when they are missing, starts virtlogd,
// virtlockd and libvirtd by hand (no systemd), makes sure no NAT or forwarding
// network can start, and waits until the daemon answers. The daemon also
// answers on loopback TCP, unauthenticated (qemu+tcp://127.0.0.1/system), so
// tests can reach it as a remote host.
//
// RestartDaemon(t, whileDown) stops that daemon (only one the scripts
// started) and starts it again with the script, for tests of what survives a
// libvirtd restart. Since go test runs packages in parallel and this is the
// machine's only libvirtd, every test that uses it holds a shared lock
// (Ensure takes it; Share for tests that do not call Ensure) and
// RestartDaemon takes it exclusively, waiting for the others. A libvirt that cannot
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
