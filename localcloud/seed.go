package localcloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/peers"
)

// What Seed creates: the names a fresh devstack has.
const (
	SeedProject     = "admin"
	SeedImageName   = "cirros-0.6-x86_64-disk"
	SeedNetworkName = "private"
	SeedSubnetName  = "private-subnet"
	SeedSubnetCIDR  = "10.0.0.0/24"
	// PlaceholderProperty marks an image whose bytes are a stand-in.
	PlaceholderProperty = "cloudmux_placeholder"
)

// Seeded names what Seed made or found.
type Seeded struct {
	ImageID   string
	NetworkID string
	SubnetID  string
}

// Seed gives an empty cloud what a fresh devstack has: a small public
// bootable image named like devstack's CirrOS and a shared network
// "private" with subnet 10.0.0.0/24, owned by SeedProject. It is
// idempotent: what already exists (by name, and for the image the
// placeholder property) is reused.
//
// The image is not CirrOS (there is no internet to fetch it from): it is a
// few KiB of raw disk whose boot sector prints a line naming itself on the
// serial port and the screen, then halts. Its properties say so.
func (c *Cloud) Seed(ctx context.Context) (Seeded, error) {
	var out Seeded
	imgID, err := c.seedImage(ctx)
	if err != nil {
		return out, fmt.Errorf("seeding the image: %w", err)
	}
	out.ImageID = imgID
	if out.NetworkID, out.SubnetID, err = c.seedNetwork(ctx); err != nil {
		return out, fmt.Errorf("seeding the network: %w", err)
	}
	c.log.WithField("image", out.ImageID).WithField("network", out.NetworkID).Info("seeded")
	return out, nil
}

func (c *Cloud) seedImage(ctx context.Context) (string, error) {
	imgs, err := c.ListImages(ctx, peers.ListOptions{Metadata: map[string]string{PlaceholderProperty: "true"}})
	if err != nil {
		return "", err
	}
	for _, img := range imgs {
		if img.Name == SeedImageName && img.Status == peers.ImageActive {
			return img.ID, nil
		}
	}
	img, err := c.CreateImage(ctx, peers.ImageSpec{
		Name: SeedImageName, Project: SeedProject, DiskFormat: "raw", ContainerFormat: "bare", Visibility: "public",
		Properties: map[string]string{
			PlaceholderProperty:          "true",
			PlaceholderProperty + "_why": "not CirrOS: a boot sector that prints a line and halts, generated offline by localcloud.Seed",
			"os_distro":                  "cirros",
			"hw_disk_bus":                "virtio",
		},
	})
	if err != nil {
		return "", err
	}
	data := PlaceholderDisk()
	if err := c.UploadImage(ctx, img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		return "", err
	}
	return img.ID, nil
}

func (c *Cloud) seedNetwork(ctx context.Context) (netID, subnetID string, err error) {
	nets, err := c.ListNetworks(ctx, peers.ListOptions{Project: SeedProject})
	if err != nil {
		return "", "", err
	}
	for _, n := range nets {
		if n.Name == SeedNetworkName && n.Shared {
			for _, sid := range n.Subnets {
				if sn, err := c.GetSubnet(ctx, sid); err == nil && sn.CIDR == SeedSubnetCIDR {
					return n.ID, sn.ID, nil
				}
			}
		}
	}
	n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: SeedNetworkName, Project: SeedProject, Shared: true})
	if err != nil {
		return "", "", err
	}
	sn, err := c.CreateSubnet(ctx, peers.SubnetSpec{
		Name: SeedSubnetName, Project: SeedProject, NetworkID: n.ID, CIDR: SeedSubnetCIDR, IPVersion: 4, EnableDHCP: true,
	})
	if err != nil {
		return "", "", errors.Join(err, c.DeleteNetwork(context.WithoutCancel(ctx), n.ID))
	}
	return n.ID, sn.ID, nil
}

// placeholderMessage is what the placeholder disk's boot sector prints.
const placeholderMessage = "cloudmux placeholder image (not CirrOS): booted, now halting.\r\n"

// placeholderSize is the placeholder disk's size: a few KiB, a whole number
// of 512-byte sectors.
const placeholderSize = 8 << 10

// PlaceholderDisk returns the placeholder image's bytes, the same on every
// call: a raw disk whose first sector is a BIOS boot sector that writes
// placeholderMessage to COM1 and through the BIOS teletype, then halts,
// followed by zeroed sectors.
func PlaceholderDisk() []byte {
	// 16-bit real mode, loaded at 0x7c00:
	//   00: 31 c0        xor ax, ax
	//   02: 8e d8        mov ds, ax
	//   04: be 1a 7c     mov si, 0x7c1a       ; the message
	//   07: ba f8 03     mov dx, 0x3f8        ; COM1
	//   0a: ac           lodsb                ; next:
	//   0b: 08 c0        or al, al
	//   0d: 74 07        jz 0x16              ; end of message
	//   0f: ee           out dx, al           ; to the serial console
	//   10: b4 0e        mov ah, 0x0e
	//   12: cd 10        int 0x10             ; to the screen
	//   14: eb f4        jmp 0x0a
	//   16: fa           cli                  ; halt:
	//   17: f4           hlt
	//   18: eb fc        jmp 0x16
	//   1a: message, NUL-terminated
	code := []byte{
		0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x1a, 0x7c, 0xba, 0xf8, 0x03,
		0xac, 0x08, 0xc0, 0x74, 0x07, 0xee, 0xb4, 0x0e, 0xcd, 0x10, 0xeb, 0xf4,
		0xfa, 0xf4, 0xeb, 0xfc,
	}
	disk := make([]byte, placeholderSize)
	n := copy(disk, code)
	copy(disk[n:], placeholderMessage+"\x00")
	disk[510], disk[511] = 0x55, 0xaa // the boot signature
	return disk
}
