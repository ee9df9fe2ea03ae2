package compute

import (
	"errors"
	"strings"
)

// NIC asks for one network interface: on a network (by broker ID; a
// peer's own shared network has one too), optionally with a fixed IP, or
// on an existing port of the project (by broker ID).
type NIC struct {
	Network string
	Port    string
	FixedIP string
}

// Networks modes besides an explicit list.
const (
	NetworksAuto = "auto" // the project's network on the chosen peer, else a shared one there, else none
	NetworksNone = "none" // no NIC
)

// CreateSpec is a new server. FlavorRef and one of ImageRef or
// BootVolume are required.
type CreateSpec struct {
	Name string
	// FlavorRef is a flavor's broker ID (as GET /flavors shows it) or name.
	FlavorRef string
	// ImageRef is an image's broker ID; empty when booting from a volume.
	ImageRef string
	// BootVolume is the broker ID of a volume of the project to boot from.
	BootVolume string
	// RootVolumeGiB, with ImageRef, boots from a new volume of this size
	// made from the image on the chosen peer (Nova's block device of
	// source image, destination volume). The volume is the project's, in
	// the index like any other, and stays when the server is deleted.
	RootVolumeGiB int
	// DeleteBootVolume deletes the boot volume (BootVolume, or the one
	// made from the image) with the server (Nova's delete_on_termination).
	DeleteBootVolume bool
	// NICs are explicit interfaces; when empty, NetworksMode says what to
	// do ("" is NetworksAuto, as Nova since 2.37 requires it be said).
	NICs         []NIC
	NetworksMode string
	// KeyName names one of the user's keypairs (os-keypairs); the broker
	// imports its public key onto the chosen peer.
	KeyName string
	// UserData is the decoded user data (at most MaxUserData bytes).
	UserData []byte
	Metadata map[string]string
	// AvailabilityZone pins a peer by name (each peer is a zone).
	AvailabilityZone string
	// Group is the server group (broker ID) the server joins: Nova's
	// "group" scheduler hint. Placement honours its policy.
	Group string
	// Hints and labels reach the placement policy as they are.
	Hints           map[string]string
	RequiredLabels  map[string]string
	PreferredLabels map[string]string
	// Tags reach the placement policy (input.request.tags) and are the
	// server's tags (Nova's server tags, 2.26): at most MaxTags, each
	// checked by CheckTag.
	Tags []string
	// Description is the server's description (Nova 2.19); nil is none.
	Description *string
	// Hostname is the guest's host name (Nova 2.90); empty derives one
	// from the name, as Nova does.
	Hostname string
	// SecurityGroups name (or give the IDs of) the project's groups the
	// server's ports are in; none is the default group.
	SecurityGroups []string
	// AccessIPv4 and AccessIPv6 are addresses the user records for the
	// server (Nova's accessIPv4/v6): shown, never configured anywhere.
	AccessIPv4, AccessIPv6 string
	// DeviceTags are the tags the request put on its NICs and its boot
	// volume (Nova 2.32/2.42), shown on the interfaces and attachments.
	DeviceTags []DeviceTag
	// ReservationID and LaunchIndex place the server in a multi-create
	// (Nova's reservation_id and launch_index); Create sets a reservation
	// of one when ReservationID is empty.
	ReservationID string
	LaunchIndex   int
	// Marks are cloudmux_ metadata an internal caller writes on the peer's
	// server to find it again (the deployment engine's tags; see Marked).
	// Never taken from a user: no API sets them.
	Marks map[string]string
}

// Validate returns every problem of the spec that needs no lookup.
func (spec CreateSpec) Validate() error {
	var errs []error
	if strings.TrimSpace(spec.Name) == "" || len(spec.Name) > 255 {
		errs = append(errs, invalid("name", "Invalid input for field/attribute name: want 1 to 255 characters, not all spaces"))
	}
	if spec.FlavorRef == "" {
		errs = append(errs, invalid("flavorRef", "Invalid input for field/attribute flavorRef: a flavor is required"))
	}
	if spec.ImageRef == "" && spec.BootVolume == "" {
		errs = append(errs, invalid("imageRef", "Invalid input for field/attribute imageRef: an image, or a boot volume in block_device_mapping_v2, is required"))
	}
	if spec.RootVolumeGiB < 0 || spec.RootVolumeGiB > 16384 || spec.RootVolumeGiB > 0 && spec.ImageRef == "" {
		errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2: a volume from an image needs the image (uuid) and a volume_size from 1 to 16384 GiB"))
	}
	if spec.ImageRef != "" && spec.BootVolume != "" {
		errs = append(errs, invalid("imageRef", "Invalid input: give an image or a boot volume, not both"))
	}
	switch spec.NetworksMode {
	case "", NetworksAuto, NetworksNone:
		if spec.NetworksMode != "" && len(spec.NICs) > 0 {
			errs = append(errs, invalid("networks", "Invalid input for field/attribute networks: %q cannot be combined with explicit networks", spec.NetworksMode))
		}
	default:
		errs = append(errs, invalid("networks", "Invalid input for field/attribute networks: want a list or \"auto\" or \"none\", not %q", spec.NetworksMode))
	}
	for i, n := range spec.NICs {
		if (n.Network == "") == (n.Port == "") {
			errs = append(errs, invalid("networks", "Invalid input for field/attribute networks[%d]: give exactly one of uuid or port", i))
		}
		if n.FixedIP != "" && n.Port != "" {
			errs = append(errs, invalid("networks", "Invalid input for field/attribute networks[%d]: fixed_ip goes with uuid, not port", i))
		}
	}
	if len(spec.UserData) > MaxUserData {
		errs = append(errs, invalid("user_data", "Invalid input for field/attribute user_data: at most %d bytes", MaxUserData))
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		errs = append(errs, err)
	}
	if err := checkMarks(spec.Marks); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkTags(spec.Tags), checkAccessIPs(spec.AccessIPv4, spec.AccessIPv6))
	if spec.Description != nil {
		errs = append(errs, CheckDescription(*spec.Description))
	}
	if spec.Hostname != "" {
		errs = append(errs, checkFQDN(spec.Hostname))
	}
	for _, d := range spec.DeviceTags {
		errs = append(errs, CheckTag("tag", d.Tag))
	}
	return errors.Join(errs...)
}

// checkMetadata applies Nova's limits and reserves the cloudmux_ prefix.
func checkMetadata(m map[string]string) error {
	var errs []error
	if len(m) > maxMetadataItems {
		errs = append(errs, invalid("metadata", "Quota exceeded for metadata_items: %d items, at most %d allowed", len(m), maxMetadataItems))
	}
	for k, v := range m {
		switch {
		case k == "" || len(k) > maxMetadataLen:
			errs = append(errs, invalid("metadata", "Invalid input for field/attribute metadata: key %q must be 1 to %d characters", k, maxMetadataLen))
		case len(v) > maxMetadataLen:
			errs = append(errs, invalid("metadata", "Invalid input for field/attribute metadata: the value of %q is longer than %d characters", k, maxMetadataLen))
		case strings.HasPrefix(k, reservedMetaPre):
			errs = append(errs, invalid("metadata", "Invalid input for field/attribute metadata: the %s prefix of %q is reserved", reservedMetaPre, k))
		}
	}
	return errors.Join(errs...)
}
