package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// membersPrefix is where image members live in the Store, one record per
// member and image at membersPrefix + member project + "/" + image ID.
// Keyed by the member first, so the hot paths, a project's image list and
// a lookup of one image for one project (Get, Nova's boot), read only that
// project's records; an image's own member list, the owner's occasional
// question, scans the records in memory.
const membersPrefix = "image-members/"

// MembersPrefix is where member records live: the garbage collector lists
// it for MemberLeftovers.
const MembersPrefix = membersPrefix

// Member statuses, as Glance's.
const (
	MemberPending  = "pending"
	MemberAccepted = "accepted"
	MemberRejected = "rejected"
)

// MemberStatuses are the statuses a member may set.
var MemberStatuses = []string{MemberPending, MemberAccepted, MemberRejected}

// MaxMembers is Glance's default image_member_quota.
const MaxMembers = 128

// Member is one project's membership of a shared image.
type Member struct {
	ImageID   string    `json:"image_id"`
	MemberID  string    `json:"member_id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Members holds image members in memory on each replica, fed by a Store
// watch (Run it beside the Service it is set on), so listing and
// resolving images reads no Store.
type Members = registry.Records[Member]

// NewMembers returns the member records kept in store; Run keeps them in
// memory.
func NewMembers(store registry.MirrorStore, log logrus.FieldLogger) *Members {
	return registry.NewRecords(store, membersPrefix, registry.DecodeJSON[Member], log)
}

func memberKey(member, imageID string) string { return membersPrefix + member + "/" + imageID }

// members returns the memory-held records, or (without Members) records
// that read the Store.
func (s *Service) members() *Members {
	if s.Members != nil {
		return s.Members
	}
	return NewMembers(s.Store, s.Log)
}

// membership returns project's membership of an image, if any.
func (s *Service) membership(ctx context.Context, project, imageID string) (Member, bool, error) {
	if project == "" {
		return Member{}, false, nil
	}
	m, err := s.members().Get(ctx, memberKey(project, imageID), false)
	if errors.Is(err, registry.ErrNotFound) {
		return Member{}, false, nil
	}
	return m, err == nil, err
}

// memberships returns the status of project's membership of each image
// shared with it.
func (s *Service) memberships(ctx context.Context, project string) (map[string]string, error) {
	if project == "" {
		return nil, nil
	}
	ms, err := s.members().List(ctx, project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.ImageID] = m.Status
	}
	return out, nil
}

// imageMembers returns an image's members, by member ID.
func (s *Service) imageMembers(ctx context.Context, imageID string) ([]Member, error) {
	all, err := s.members().List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(m Member) bool { return m.ImageID != imageID })
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.MemberID, b.MemberID) })
	return out, nil
}

// sharedImage finds an image the caller sees and checks it is shared, as
// Glance does before any member call.
func (s *Service) sharedImage(ctx context.Context, c Caller, id string, owner bool) (Image, error) {
	find := s.find
	if owner {
		find = s.findWritable
	}
	_, img, err := find(ctx, c, id)
	if err != nil {
		return Image{}, err
	}
	if img.Visibility != "shared" {
		return Image{}, fmt.Errorf("only shared images have members: image %s is %s: %w", id, img.Visibility, ErrForbidden)
	}
	return img, nil
}

func checkMemberID(member string) error {
	if member == "" || len(member) > 255 || strings.ContainsAny(member, "/ ") {
		return fmt.Errorf("member %q: want a project ID: %w", member, ErrInvalid)
	}
	return nil
}

// AddMember shares an image with a project, pending its acceptance. Only
// the image's owner (or a cloud admin) adds members, and only to a shared
// image; a member already there is ErrConflict, one past MaxMembers
// ErrTooLarge.
func (s *Service) AddMember(ctx context.Context, c Caller, id, member string) (Member, error) {
	if err := checkMemberID(member); err != nil {
		return Member{}, err
	}
	img, err := s.sharedImage(ctx, c, id, true)
	if err != nil {
		return Member{}, err
	}
	if !img.Indexed {
		return Member{}, fmt.Errorf("image %s belongs to its cloud, not to a project of the broker: it cannot be shared: %w", id, ErrForbidden)
	}
	if member == img.Project {
		return Member{}, fmt.Errorf("the owner of image %s cannot be a member of it: %w", id, ErrInvalid)
	}
	if _, ok, err := s.membership(ctx, member, img.ID); err != nil {
		return Member{}, err
	} else if ok {
		return Member{}, fmt.Errorf("member %s already has access to image %s: %w", member, id, ErrConflict)
	}
	have, err := s.imageMembers(ctx, img.ID)
	if err != nil {
		return Member{}, err
	}
	if len(have) >= MaxMembers {
		return Member{}, fmt.Errorf("image %s already has %d members, the most allowed: %w", id, MaxMembers, ErrTooLarge)
	}
	now := time.Now().UTC().Truncate(time.Second)
	m := Member{ImageID: img.ID, MemberID: member, Status: MemberPending, CreatedAt: now, UpdatedAt: now}
	// Created only if absent: of two owners adding the same member at
	// once (through two brokers), one gets Glance's 409.
	if err := s.writeMember(ctx, m, 0); errors.Is(err, registry.ErrConflict) {
		return Member{}, fmt.Errorf("member %s already has access to image %s: %w", member, id, ErrConflict)
	} else if err != nil {
		return Member{}, err
	}
	s.Log.WithFields(logrus.Fields{"image": img.ID, "member": member, "project": c.Project}).Info("image shared")
	return m, nil
}

// writeMember writes m by compare-and-swap at index (0: only if absent),
// so neither a concurrent add nor a status change made after the owner
// removed the member brings a membership back.
func (s *Service) writeMember(ctx context.Context, m Member, index uint64) error {
	rec, err := json.Marshal(m)
	if err != nil {
		return err
	}
	key := memberKey(m.MemberID, m.ImageID)
	at, err := s.Store.CAS(ctx, key, rec, index)
	if err != nil {
		return fmt.Errorf("recording member %s of image %s: %w", m.MemberID, m.ImageID, err)
	}
	s.members().Wrote(key, m, at)
	return nil
}

// ListMembers returns a shared image's members: every one to its owner
// (and cloud admins), only its own membership to a member, as Glance.
func (s *Service) ListMembers(ctx context.Context, c Caller, id string) ([]Member, error) {
	img, err := s.sharedImage(ctx, c, id, false)
	if err != nil {
		return nil, err
	}
	if c.Admin || img.Project == c.Project {
		return s.imageMembers(ctx, img.ID)
	}
	m, ok, err := s.membership(ctx, c.Project, img.ID)
	if err != nil || !ok {
		return nil, err
	}
	return []Member{m}, nil
}

// GetMember returns one member of a shared image, to its owner or to that
// member; anyone else, like an ID that is no member, gets ErrNotFound.
func (s *Service) GetMember(ctx context.Context, c Caller, id, member string) (Member, error) {
	img, err := s.sharedImage(ctx, c, id, false)
	if err != nil {
		return Member{}, err
	}
	m, ok, err := s.membership(ctx, member, img.ID)
	if err != nil {
		return Member{}, err
	}
	if !ok || (!c.Admin && img.Project != c.Project && member != c.Project) {
		return Member{}, fmt.Errorf("%s is not a member of image %s: %w", member, id, ErrNotFound)
	}
	return m, nil
}

// UpdateMember sets a membership's status: only the member itself does
// (the owner shares, the member decides), or a cloud admin.
func (s *Service) UpdateMember(ctx context.Context, c Caller, id, member, status string) (Member, error) {
	if err := checkOneOf("status", status, MemberStatuses); err != nil {
		return Member{}, err
	}
	m, err := s.GetMember(ctx, c, id, member)
	if err != nil {
		return Member{}, err
	}
	if !c.Admin && member != c.Project {
		return Member{}, fmt.Errorf("only the member may change the status of its membership of image %s: %w", id, ErrForbidden)
	}
	if m.Status == status {
		return m, nil
	}
	// The stored record, not memory's copy: the CAS must be at its current
	// index. Another change of this one membership meanwhile is retried; a
	// removal meanwhile is the owner's last word.
	key := memberKey(member, m.ImageID)
	for {
		kv, err := s.Store.Get(ctx, key)
		if errors.Is(err, registry.ErrNotFound) {
			return Member{}, fmt.Errorf("%s is not a member of image %s: %w", member, id, ErrNotFound)
		}
		if err != nil {
			return Member{}, err
		}
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return Member{}, fmt.Errorf("decode %s: %w", key, err)
		}
		m.Status, m.UpdatedAt = status, time.Now().UTC().Truncate(time.Second)
		err = s.writeMember(ctx, m, kv.ModifyIndex)
		if errors.Is(err, registry.ErrConflict) {
			continue
		}
		if err != nil {
			return Member{}, err
		}
		return m, nil
	}
}

// DeleteMember stops sharing an image with a project: the owner's (or a
// cloud admin's) call; a member cannot leave this way, as in Glance (it
// rejects instead).
func (s *Service) DeleteMember(ctx context.Context, c Caller, id, member string) error {
	img, err := s.sharedImage(ctx, c, id, true)
	if err != nil {
		return err
	}
	if _, ok, err := s.membership(ctx, member, img.ID); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s is not a member of image %s: %w", member, id, ErrNotFound)
	}
	key := memberKey(member, img.ID)
	if err := s.Store.Delete(ctx, key); err != nil && !errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("removing member %s of image %s: %w", member, id, err)
	}
	s.members().Deleted(key)
	return nil
}

// forgetMembers drops a deleted image's members; what fails is left for
// the garbage collector (MemberLeftovers).
func (s *Service) forgetMembers(ctx context.Context, imageID string) {
	ms, err := s.imageMembers(ctx, imageID)
	if err != nil {
		s.Log.WithError(err).WithField("image", imageID).Warn("members of a deleted image left behind")
		return
	}
	for _, m := range ms {
		key := memberKey(m.MemberID, imageID)
		if err := s.Store.Delete(ctx, key); err != nil && !errors.Is(err, registry.ErrNotFound) {
			s.Log.WithError(err).WithFields(logrus.Fields{"image": imageID, "member": m.MemberID}).Warn("member of a deleted image left behind")
			continue
		}
		s.members().Deleted(key)
	}
}

// MemberLeftovers returns those of kvs (member records) whose image is no
// longer indexed: a delete whose cleanup failed, or an image gone from its
// peer some other way. It is the judge of a gc.Orphans.
func (s *Service) MemberLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		rest, ok := strings.CutPrefix(key, membersPrefix)
		if !ok {
			return "", "", false
		}
		_, id, ok := strings.Cut(rest, "/")
		return Kind, id, ok && id != ""
	})
}

// sharedStatus is the caller's membership status of img when img reaches
// it only as a member ("" otherwise: its own, public, or an admin's view).
func sharedStatus(c Caller, img Image, mine map[string]string) string {
	if c.Admin || img.Project == c.Project || img.Visibility != "shared" {
		return ""
	}
	return mine[img.ID]
}
