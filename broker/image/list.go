package image

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/peers"
)

// Query narrows, orders and pages a list. Empty fields match everything;
// list fields match any of their values (Glance's "in:" operator).
type Query struct {
	IDs, Names, Statuses, DiskFormats, ContainerFormats []string
	// Visibility: "" lists Glance's default (public images and the
	// caller's own; everything for a cloud admin), "all" adds community
	// images, any other value lists only images of that visibility.
	Visibility string
	// MemberStatus narrows the shared images the caller sees as a member
	// to those of its memberships in this status: "" is Glance's
	// default, accepted; "all" is any.
	MemberStatus string
	Owner        string
	// Tags must all be on an image.
	Tags             []string
	SizeMin, SizeMax *int64
	Protected        *bool
	// Hidden lists only hidden images when true, only visible ones when
	// false (Glance's os_hidden filter; false by default).
	Hidden bool
	// Properties must all be on an image with these values.
	Properties map[string]string
	// CreatedAt and UpdatedAt compare the image's times (Glance's
	// created_at=gt:2024-01-01T00:00:00Z); every condition must hold.
	CreatedAt, UpdatedAt []TimeFilter
	// Sort orders the list; default created_at then id, newest first.
	Sort []SortKey
	// Limit caps the page (0: no cap); Marker is the ID of the last image
	// of the previous page.
	Limit  int
	Marker string
}

// TimeFilter is one time comparison: Op is eq, neq, gt, gte, lt or lte.
type TimeFilter struct {
	Op string
	At time.Time
}

func (f TimeFilter) holds(t time.Time) bool {
	c := t.Truncate(time.Second).Compare(f.At)
	switch f.Op {
	case "eq":
		return c == 0
	case "neq":
		return c != 0
	case "gt":
		return c > 0
	case "gte":
		return c >= 0
	case "lt":
		return c < 0
	case "lte":
		return c <= 0
	}
	return false
}

// SortKey is one sort criterion.
type SortKey struct {
	Key  string
	Desc bool
}

// SortKeys are the attributes an image list sorts by.
var SortKeys = []string{"id", "name", "status", "visibility", "owner", "size", "disk_format", "container_format",
	"min_ram", "min_disk", "protected", "created_at", "updated_at"}

// Page is one page of a list.
type Page struct {
	Images []Image
	// More reports images after this page (the next page starts after
	// the last image's ID).
	More bool
	// Partial names the peers that did not answer: their images are
	// missing from the list.
	Partial []string
}

// Validate checks the sort keys and values of the query.
func (q Query) Validate() error {
	var errs []error
	for _, k := range q.Sort {
		if !slices.Contains(SortKeys, k.Key) {
			errs = append(errs, fmt.Errorf("invalid sort key '%s': want one of %s: %w", k.Key, strings.Join(SortKeys, ", "), ErrInvalid))
		}
	}
	if q.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit must be a non-negative integer: %w", ErrInvalid))
	}
	for _, f := range append(slices.Clone(q.CreatedAt), q.UpdatedAt...) {
		if !slices.Contains([]string{"eq", "neq", "gt", "gte", "lt", "lte"}, f.Op) {
			errs = append(errs, fmt.Errorf("invalid time comparison operator '%s': want eq, neq, gt, gte, lt or lte: %w", f.Op, ErrInvalid))
		}
	}
	if q.MemberStatus != "" && q.MemberStatus != "all" {
		if err := checkOneOf("member_status", q.MemberStatus, MemberStatuses); err != nil {
			errs = append(errs, err)
		}
	}
	if q.Visibility != "" && q.Visibility != "all" {
		if err := checkOneOf("visibility", q.Visibility, Visibilities); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List merges the images the caller may see from every connected peer
// (one list call per peer, in parallel, each under PeerTimeout), each
// image once (an image the broker created is taken from its home peer,
// never from a staged copy), then filters, sorts and pages them.
func (s *Service) List(ctx context.Context, c Caller, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	entries, err := s.Index.List(ctx, Kind, "")
	if err != nil {
		return Page{}, err
	}
	byID := make(map[string]index.Entry, len(entries))
	for _, e := range entries {
		byID[e.ID] = e
	}
	deactivated, err := s.deactivatedSet(ctx)
	if err != nil {
		return Page{}, err
	}
	mine, err := s.memberships(ctx, c.Project)
	if err != nil {
		return Page{}, err
	}
	importing, err := s.importStatuses(ctx)
	if err != nil {
		return Page{}, err
	}
	members, failed := s.connected()
	res := peers.Gather(ctx, members, s.timeout(), func(ctx context.Context, m *peers.Member) ([]peers.Image, error) {
		return m.Cloud.ListImages(ctx, peers.ListOptions{})
	})
	seen := map[string]bool{}
	var all []Image
	for _, r := range res {
		if r.Err != nil {
			failed = append(failed, r.Member.Peer.Name)
			continue
		}
		for _, pi := range r.Value {
			if pi.Properties[staging.MetaReplicaOf] != "" {
				continue // a staged copy: the home peer speaks for the image
			}
			id := pi.ID
			if mid, ok := s.managedID(pi); ok {
				id = mid
			}
			l := located{img: pi, member: r.Member}
			if e, ok := byID[id]; ok {
				if e.PeerID != r.Member.Peer.ID || e.PeerResourceID != pi.ID {
					continue // a staged copy: the home peer speaks for the image
				}
				l.entry = &e
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			img := s.present(l, deactivated[id])
			if st := importing[id]; st != "" && (img.Status == peers.ImageQueued || img.Status == peers.ImageActive) {
				img.Status = st
			}
			if visible(c, img) || sharedStatus(c, img, mine) != "" {
				all = append(all, img)
			}
		}
	}
	sort.Strings(failed)
	keys := q.Sort
	if len(keys) == 0 {
		keys = []SortKey{{Key: "created_at", Desc: true}}
	}
	slices.SortStableFunc(all, func(a, b Image) int {
		for _, k := range keys {
			if d := compare(a, b, k.Key); d != 0 {
				if k.Desc {
					return -d
				}
				return d
			}
		}
		d := cmp.Compare(a.ID, b.ID)
		if keys[len(keys)-1].Desc {
			return -d
		}
		return d
	})
	// The marker is any image the caller sees, as in Glance, not only one
	// the filters keep: a page's last image may have changed (an image
	// listed by status=active, deactivated since) before the next request.
	if q.Marker != "" {
		i := slices.IndexFunc(all, func(img Image) bool { return img.ID == q.Marker })
		if i < 0 {
			return Page{}, fmt.Errorf("marker %s not found: %w", q.Marker, ErrInvalid)
		}
		all = all[i+1:]
	}
	all = slices.DeleteFunc(all, func(img Image) bool { return !q.matches(c, img, sharedStatus(c, img, mine)) })
	page := Page{Images: all, Partial: failed}
	if q.Limit > 0 && len(all) > q.Limit {
		page.Images, page.More = all[:q.Limit], true
	}
	return page, nil
}

// matches applies the query's filters (visibility rules are applied
// before); member is the caller's membership status when the image
// reaches it only as a member of it.
func (q Query) matches(c Caller, img Image, member string) bool {
	if member != "" && q.MemberStatus != "all" && member != cmp.Or(q.MemberStatus, MemberAccepted) {
		return false
	}
	switch q.Visibility {
	case "":
		if !c.Admin && img.Visibility != "public" && img.Project != c.Project && member == "" {
			return false // community images of others show only when asked for
		}
	case "all":
	default:
		if img.Visibility != q.Visibility {
			return false
		}
	}
	anyOf := func(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }
	if !anyOf(q.IDs, img.ID) || !anyOf(q.Names, img.Name) || !anyOf(q.Statuses, string(img.Status)) ||
		!anyOf(q.DiskFormats, img.DiskFormat) || !anyOf(q.ContainerFormats, img.ContainerFormat) {
		return false
	}
	if (q.Owner != "" && img.Project != q.Owner) || img.Hidden != q.Hidden {
		return false
	}
	if (q.Protected != nil && img.Protected != *q.Protected) ||
		(q.SizeMin != nil && img.Size < *q.SizeMin) || (q.SizeMax != nil && img.Size > *q.SizeMax) {
		return false
	}
	for _, t := range q.Tags {
		if !slices.Contains(img.Tags, t) {
			return false
		}
	}
	for k, v := range q.Properties {
		if got, ok := img.Properties[k]; !ok || got != v {
			return false
		}
	}
	for _, f := range q.CreatedAt {
		if !f.holds(img.CreatedAt) {
			return false
		}
	}
	for _, f := range q.UpdatedAt {
		if !f.holds(img.UpdatedAt) {
			return false
		}
	}
	return true
}

func compare(a, b Image, key string) int {
	switch key {
	case "id":
		return cmp.Compare(a.ID, b.ID)
	case "name":
		return cmp.Compare(a.Name, b.Name)
	case "status":
		return cmp.Compare(a.Status, b.Status)
	case "visibility":
		return cmp.Compare(a.Visibility, b.Visibility)
	case "owner":
		return cmp.Compare(a.Project, b.Project)
	case "size":
		return cmp.Compare(a.Size, b.Size)
	case "disk_format":
		return cmp.Compare(a.DiskFormat, b.DiskFormat)
	case "container_format":
		return cmp.Compare(a.ContainerFormat, b.ContainerFormat)
	case "min_ram":
		return cmp.Compare(a.MinRAMMiB, b.MinRAMMiB)
	case "min_disk":
		return cmp.Compare(a.MinDiskGiB, b.MinDiskGiB)
	case "protected":
		return cmp.Compare(boolInt(a.Protected), boolInt(b.Protected))
	case "created_at":
		return a.CreatedAt.Compare(b.CreatedAt)
	case "updated_at":
		return a.UpdatedAt.Compare(b.UpdatedAt)
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
