package compute

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Nova's limits on server tags (nova.objects.instance.MAX_TAG_COUNT and
// tag.MAX_TAG_LENGTH).
const (
	MaxTags      = 50
	maxTagLength = 60
	// maxDescription is Nova's limit on a server's description.
	maxDescription = 255
)

// DeviceTag is a tag a create put on a NIC (by the network or port it
// asked for, broker IDs) or a volume (broker ID): Nova's device role
// tagging, shown on os-interface and os-volume_attachments (2.70).
type DeviceTag struct {
	Network string `json:"network,omitempty"`
	Port    string `json:"port,omitempty"`
	Volume  string `json:"volume,omitempty"`
	// Boot marks the tag of the boot volume (its ID is known only once a
	// volume made from an image exists).
	Boot bool   `json:"boot,omitempty"`
	Tag  string `json:"tag"`
}

// CheckTag applies Nova's rules to a server or device tag: 1 to 60
// characters, neither "/" nor ",".
func CheckTag(field, tag string) error {
	if n := utf8.RuneCountInString(tag); n == 0 || n > maxTagLength || strings.ContainsAny(tag, "/,") {
		return invalid(field, "Invalid input for field/attribute %s. Value: %s. A tag is 1 to %d characters without '/' or ','", field, tag, maxTagLength)
	}
	return nil
}

// checkTags checks a server's whole tag list.
func checkTags(tags []string) error {
	if len(tags) > MaxTags {
		return invalid("tags", "Invalid input for field/attribute tags. At most %d tags are allowed, not %d", MaxTags, len(tags))
	}
	var errs []error
	for _, t := range tags {
		errs = append(errs, CheckTag("tags", t))
	}
	return errors.Join(errs...)
}

// dedupTags keeps the first of each tag, in order: Nova keeps a set.
func dedupTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Hostname rules: Nova's before 2.94 (a label) and its FQDN rule after.
var (
	hostnameLabel = regexp.MustCompile(`^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$`)
	hostnameFQDN  = regexp.MustCompile(`^[a-zA-Z0-9-._]*$`)
	notHostname   = regexp.MustCompile(`[^a-z0-9-]+`)
)

// CheckHostname applies Nova 2.90's rule to a requested hostname: 2 to 63
// letters, digits and inner hyphens.
func CheckHostname(h string) error {
	if len(h) < 2 || len(h) > 63 || !hostnameLabel.MatchString(h) {
		return invalid("hostname", "Invalid input for field/attribute hostname. Value: %s. A hostname is 2 to 63 letters, digits and inner hyphens", h)
	}
	return nil
}

// defaultHostname derives a hostname from a display name as Nova's
// sanitize_hostname does: at most 63 characters, spaces, underscores and
// dots to hyphens, other characters than letters, digits and hyphens
// dropped, lower case, no leading or trailing hyphens; "Server-<id>" when
// nothing is left.
func defaultHostname(name, id string) string {
	if len(name) > 63 {
		name = name[:63]
	}
	h := strings.NewReplacer(" ", "-", "_", "-", ".", "-").Replace(name)
	h = notHostname.ReplaceAllString(strings.ToLower(h), "")
	h = strings.Trim(h, ".-")
	if h == "" {
		return "Server-" + id
	}
	return h
}

// CheckDescription applies Nova's rule to a description: at most 255
// printable characters.
func CheckDescription(d string) error {
	if utf8.RuneCountInString(d) > maxDescription || strings.IndexFunc(d, func(r rune) bool { return r < 0x20 && r != '\t' }) >= 0 {
		return invalid("description", "Invalid input for field/attribute description. At most %d printable characters", maxDescription)
	}
	return nil
}

// checkAccessIPs refuses access addresses that are not of their family.
func checkAccessIPs(v4, v6 string) error {
	var errs []error
	if ip := net.ParseIP(v4); v4 != "" && (ip == nil || ip.To4() == nil) {
		errs = append(errs, invalid("accessIPv4", "Invalid input for field/attribute accessIPv4. Value: %s. It is not an IPv4 address", v4))
	}
	if ip := net.ParseIP(v6); v6 != "" && (ip == nil || ip.To4() != nil) {
		errs = append(errs, invalid("accessIPv6", "Invalid input for field/attribute accessIPv6. Value: %s. It is not an IPv6 address", v6))
	}
	return errors.Join(errs...)
}

// show fills in what the broker keeps of a server.
func (a attrs) show(out *Server) {
	out.Description, out.Hostname, out.Tags = a.Description, a.Hostname, slices.Clone(a.Tags)
	out.AccessIPv4, out.AccessIPv6, out.DeviceTags = a.AccessIPv4, a.AccessIPv6, slices.Clone(a.DeviceTags)
	out.ReservationID, out.LaunchIndex, out.UserData = a.ReservationID, a.LaunchIndex, a.UserData
	out.DeleteOnTermination = slices.Clone(a.DeleteOnTermination)
	if a.ServerGroup != "" {
		out.ServerGroups = []string{a.ServerGroup}
	}
	if a.BootDeleteOnTermination && out.BootVolume != "" && !slices.Contains(out.DeleteOnTermination, out.BootVolume) {
		out.DeleteOnTermination = append(out.DeleteOnTermination, out.BootVolume)
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if out.Hostname == "" {
		out.Hostname = defaultHostname(out.Name, out.ID)
	}
}

// hostStatus is a peer's state as Nova's host_status names a compute
// host's.
func hostStatus(m *peers.Member) string {
	switch {
	case m == nil:
		return "UNKNOWN"
	case m.Peer.Status == registry.StatusMaintenance:
		return "MAINTENANCE"
	case m.Cloud == nil || m.Peer.Status == registry.StatusDown:
		return "DOWN"
	}
	return "UP"
}

// keptAtCreate is what a create leaves in the server's attrs.
func keptAtCreate(c Caller, spec CreateSpec, userData string, flavor peers.Flavor, image string) attrs {
	var deleted []string
	if spec.DeleteBootVolume && spec.BootVolume != "" {
		deleted = []string{spec.BootVolume}
	}
	return attrs{DeleteOnTermination: deleted, Description: spec.Description, Hostname: spec.Hostname, Tags: dedupTags(spec.Tags),
		AccessIPv4: spec.AccessIPv4, AccessIPv6: spec.AccessIPv6, DeviceTags: spec.DeviceTags,
		ReservationID: spec.ReservationID, LaunchIndex: spec.LaunchIndex, UserData: userData, ServerGroup: spec.Group,
		User: c.User, Flavor: flavor.ID, Image: image, BootDeleteOnTermination: spec.DeleteBootVolume && spec.RootVolumeGiB > 0,
		FlavorSizes: &keptFlavor{Name: flavor.Name, VCPUs: flavor.VCPUs, RAMMiB: flavor.RAMMiB, DiskGiB: flavor.DiskGiB, EphemGiB: flavor.EphemeralGiB}}
}

// changeAttrs applies change to a server's attrs and writes them, read
// again and reapplied when another write won the race. The server must
// be the caller's.
func (s *Servers) changeAttrs(ctx context.Context, c Caller, id string, change func(a *attrs) error) error {
	if _, _, err := s.lookup(ctx, c, id); err != nil && !errors.Is(err, ErrUnavailable) {
		return err
	}
	for attempt := 0; ; attempt++ {
		a, at, err := s.attrStore().Load(ctx, c.Project, id)
		if err != nil {
			return err
		}
		if err := change(&a); err != nil {
			return err
		}
		a.UpdatedAt = time.Now().UTC()
		err = s.attrStore().CAS(ctx, c.Project, id, a, at)
		if errors.Is(err, registry.ErrConflict) && attempt < 5 {
			continue // a concurrent change: read again and reapply
		}
		return err
	}
}

// Tags returns a server's tags (Nova's GET /servers/{id}/tags).
func (s *Servers) Tags(ctx context.Context, c Caller, id string) ([]string, error) {
	if _, _, err := s.lookup(ctx, c, id); err != nil && !errors.Is(err, ErrUnavailable) {
		return nil, err
	}
	a, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return nil, err
	}
	if a.Tags == nil {
		return []string{}, nil
	}
	return slices.Clone(a.Tags), nil
}

// SetTags replaces a server's tags and returns them.
func (s *Servers) SetTags(ctx context.Context, c Caller, id string, tags []string) ([]string, error) {
	tags = dedupTags(tags)
	if err := checkTags(tags); err != nil {
		return nil, err
	}
	err := s.changeAttrs(ctx, c, id, func(a *attrs) error {
		a.Tags = tags
		return nil
	})
	return tags, err
}

// AddTag adds one tag; one the server has already is no change. A 51st
// tag is refused.
func (s *Servers) AddTag(ctx context.Context, c Caller, id, tag string) error {
	if err := CheckTag("tag", tag); err != nil {
		return err
	}
	return s.changeAttrs(ctx, c, id, func(a *attrs) error {
		if slices.Contains(a.Tags, tag) {
			return nil
		}
		if len(a.Tags) >= MaxTags {
			return &Error{Field: "tags", Message: fmt.Sprintf("Maximum number of tags (%d) exceeded on server %s", MaxTags, id), Err: ErrInvalid}
		}
		a.Tags = append(a.Tags, tag)
		return nil
	})
}

// DeleteTag removes one tag; one the server lacks is ErrNotFound.
func (s *Servers) DeleteTag(ctx context.Context, c Caller, id, tag string) error {
	return s.changeAttrs(ctx, c, id, func(a *attrs) error {
		i := slices.Index(a.Tags, tag)
		if i < 0 {
			return &Error{Field: "tag", Message: fmt.Sprintf("Tag %s not found on server %s", tag, id), Err: ErrNotFound}
		}
		a.Tags = slices.Delete(a.Tags, i, i+1)
		return nil
	})
}

// checkFQDN applies Nova 2.94's rule to a hostname: 1 to 255 letters,
// digits, dots, hyphens and underscores.
func checkFQDN(h string) error {
	if len(h) < 1 || len(h) > 255 || !hostnameFQDN.MatchString(h) {
		return invalid("hostname", "Invalid input for field/attribute hostname. Value: %s. A hostname is 1 to 255 letters, digits, dots, hyphens and underscores", h)
	}
	return nil
}

// NewReservationID returns a reservation ID as Nova makes them: "r-" and
// eight random characters.
func NewReservationID() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return "r-" + string(b)
}

// encodeUserData is user data as Nova shows it: base64, "" for none.
func encodeUserData(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(data)
}
