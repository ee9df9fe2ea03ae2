package libvirttest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ConfigDrive writes an OpenStack config drive into dir and returns its path:
// an ISO 9660 image (Rock Ridge and Joliet) labelled ConfigDriveLabel holding
// openstack/latest/meta_data.json and, when userData is not nil,
// openstack/latest/user_data. It uses genisoimage (which
// scripts/build-guest-image.sh installs); the local cloud builds its own
// drives in Go, this one is for tests of the guest image itself.
func ConfigDrive(t testing.TB, dir string, metaData, userData []byte) string {
	t.Helper()
	src := filepath.Join(dir, "config-drive")
	latest := filepath.Join(src, "openstack", "latest")
	if err := os.MkdirAll(latest, 0o755); err != nil {
		t.Fatalf("libvirttest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(latest, "meta_data.json"), metaData, 0o644); err != nil {
		t.Fatalf("libvirttest: %v", err)
	}
	if userData != nil {
		if err := os.WriteFile(filepath.Join(latest, "user_data"), userData, 0o644); err != nil {
			t.Fatalf("libvirttest: %v", err)
		}
	}
	iso := filepath.Join(dir, "config-drive.iso")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "genisoimage", "-quiet", "-o", iso, "-V", ConfigDriveLabel, "-r", "-J", src)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("libvirttest: genisoimage (scripts/build-guest-image.sh installs it): %v: %s", err, stderr.String())
	}
	return iso
}

// Domain is the shape of a libvirt domain that boots the guest image: what
// the local cloud's driver has to produce, reduced to what matters.
type Domain struct {
	Name string
	// Disk is the root disk, raw (a copy of GuestImage, or anything BIOS
	// bootable). It must be readable and writable by libvirt's qemu user
	// (libvirt chowns the file, but every directory above it needs o+x).
	Disk string
	// ConfigDrive, when set, is attached as a read-only virtio disk.
	ConfigDrive string
	// ConsoleLog is where the first serial port (the guest's console) goes.
	ConsoleLog string
	// MemoryMiB defaults to 256 (128 is enough for the guest itself).
	MemoryMiB int
}

// XML returns the domain definition: TCG (type='qemu'), i440fx machine
// ('pc'), SeaBIOS, the root disk virtio (vda) booted first, the config drive
// a read-only virtio disk (vdb), serial port 0 to a file, no network, no
// graphics.
func (d Domain) XML() string {
	mem := d.MemoryMiB
	if mem == 0 {
		mem = 256
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
`, xmlEscape(d.Name), mem, xmlEscape(d.Disk))
	if d.ConfigDrive != "" {
		fmt.Fprintf(&b, `    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%s'/>
      <target dev='vdb' bus='virtio'/>
      <readonly/>
    </disk>
`, xmlEscape(d.ConfigDrive))
	}
	fmt.Fprintf(&b, `    <serial type='file'>
      <source path='%s'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`, xmlEscape(d.ConsoleLog))
	return b.String()
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writing to a bytes.Buffer does not fail
	return b.String()
}
