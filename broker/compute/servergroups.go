package compute

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/kept"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Server groups (Nova's os-server-groups) are the broker's own: a group
// is a record in the Store (per project, served from a watch-fed memory
// like server attrs) naming its policy, its rules and its members with
// the peer each runs on. A peer stands for Nova's host: placement keeps
// an affinity group on one peer and spreads an anti-affinity group over
// peers (policy.Group, enforced in Go whatever the placement policy
// says), and the member is recorded with a CAS that checks the policy
// again against the group as it is then, so two creates racing for the
// last free peer cannot both take it. Within a peer, the peer's own
// scheduler places the server; the group is not passed down.
//
// Quotas: server_groups counts a project's groups in the ledger;
// server_group_members caps each group's members (checked in the same
// CAS). Both are bounded, so group records need no collector: they go
// when deleted, and a member goes with its server.

// NovaServerGroup is a server group as the API shows it.
type NovaServerGroup struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	Project string         `json:"project"`
	User    string         `json:"user"`
	Policy  string         `json:"policy"`
	Rules   map[string]int `json:"rules,omitempty"`
	// Members maps a member server's broker ID to its peer's ID.
	Members   map[string]string `json:"members,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// MemberIDs are the group's members, sorted.
func (g NovaServerGroup) MemberIDs() []string { return slices.Sorted(maps.Keys(g.Members)) }

// RuleMaxServerPerHost is the one rule Nova defines (2.64, anti-affinity
// only): how many members one host (here: peer) may hold.
const RuleMaxServerPerHost = "max_server_per_host"

// GroupPolicies are the policies a group may have; the soft ones came
// with Nova 2.15.
var GroupPolicies = []string{policy.GroupAffinity, policy.GroupAntiAffinity, policy.GroupSoftAffinity, policy.GroupSoftAntiAffinity}

const groupsRoot = "compute/server-groups/"

// ServerGroups holds every server group in memory on each replica, fed
// by a Store watch: Run it beside the Servers it is set on.
type ServerGroups = kept.Memory[NovaServerGroup]

// NewServerGroups returns the groups kept in store; Run keeps them in
// memory.
func NewServerGroups(store registry.MirrorStore, log logrus.FieldLogger) *ServerGroups {
	return kept.NewMemory[NovaServerGroup](store, groupsRoot, log)
}

func (s *Servers) groupStore() kept.Attrs[NovaServerGroup] {
	return kept.Attrs[NovaServerGroup]{Store: s.Store, Root: groupsRoot, Memory: s.GroupMemory, Log: s.Log}
}

func groupNotFound(id string) error {
	return &Error{Message: fmt.Sprintf("Server group %s could not be found.", id), Err: ErrNotFound}
}

// CreateGroup makes a server group of the caller's project, counted in
// its server_groups quota. rules may set max_server_per_host (1 or more)
// on an anti-affinity group only.
func (s *Servers) CreateGroup(ctx context.Context, c Caller, name, pol string, rules map[string]int) (NovaServerGroup, error) {
	switch {
	case name == "" || len(name) > 255 || strings.TrimSpace(name) != name:
		return NovaServerGroup{}, invalid("name", "Invalid input for field/attribute name: 1 to 255 characters, without leading or trailing spaces")
	case !slices.Contains(GroupPolicies, pol):
		return NovaServerGroup{}, invalid("policy", "Invalid input for field/attribute policy. Value: %s. It is not one of %s", pol, strings.Join(GroupPolicies, ", "))
	}
	for k, v := range rules {
		switch {
		case k != RuleMaxServerPerHost:
			return NovaServerGroup{}, invalid("rules", "Invalid input for field/attribute rules: unknown rule %q", k)
		case pol != policy.GroupAntiAffinity:
			return NovaServerGroup{}, invalid("rules", "Invalid input for field/attribute rules: %s applies to the anti-affinity policy only", k)
		case v < 1:
			return NovaServerGroup{}, invalid("rules", "Invalid input for field/attribute rules: %s must be 1 or more", k)
		}
	}
	id := uuid.NewString()
	res, err := s.Quota.Reserve(ctx, quota.Scope{Project: c.Project}, quota.Amounts{quota.ServerGroups: 1}, "server group "+id)
	if err != nil {
		return NovaServerGroup{}, quotaError(err)
	}
	g := NovaServerGroup{ID: id, Name: name, Project: c.Project, User: c.User, Policy: pol, Rules: maps.Clone(rules), CreatedAt: time.Now().UTC()}
	if err := s.groupStore().CAS(ctx, c.Project, id, g, 0); err != nil {
		s.release(ctx, id, res)
		return NovaServerGroup{}, err
	}
	if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
		s.Log.WithError(err).WithField("server_group", id).Error("a server group's quota not counted; the reservation expires")
	}
	s.Log.WithFields(logrus.Fields{"server_group": id, "policy": pol, "project": c.Project}).Info("server group created")
	return g, nil
}

// Group returns a server group of the caller's project (from memory: a
// view, nothing is decided on it).
func (s *Servers) Group(ctx context.Context, c Caller, id string) (NovaServerGroup, error) {
	g, err := s.groupStore().View(ctx, c.Project, id)
	if err != nil {
		return NovaServerGroup{}, err
	}
	if g.ID == "" {
		return NovaServerGroup{}, groupNotFound(id)
	}
	return g, nil
}

// Groups lists the caller's project's server groups, every project's for
// a cloud admin who asks for all, oldest first.
func (s *Servers) Groups(ctx context.Context, c Caller, allProjects bool) ([]NovaServerGroup, error) {
	project := c.Project
	if allProjects {
		if !c.Admin {
			return nil, &Error{Message: "Policy doesn't allow os_compute_api:os-server-groups:index:all_projects to be performed.", Err: ErrForbidden}
		}
		project = ""
	}
	all, err := s.groupStore().Project(ctx, project)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(all))
	slices.SortFunc(out, func(a, b NovaServerGroup) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteGroup deletes a server group of the caller's project; its
// members keep running, no longer in a group (as in Nova).
func (s *Servers) DeleteGroup(ctx context.Context, c Caller, id string) error {
	g, _, err := s.groupStore().Load(ctx, c.Project, id)
	if err != nil {
		return err
	}
	if g.ID == "" {
		return groupNotFound(id)
	}
	if err := s.groupStore().Delete(ctx, c.Project, id); err != nil {
		return err
	}
	if err := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: c.Project}, quota.Amounts{quota.ServerGroups: 1}); err != nil {
		s.Log.WithError(err).WithField("server_group", id).Error("a deleted server group's quota not freed")
	}
	for _, m := range g.MemberIDs() {
		if err := s.changeAttrs(ctx, c, m, func(a *attrs) error {
			if a.ServerGroup == id {
				a.ServerGroup = ""
			}
			return nil
		}); err != nil && !errors.Is(err, ErrNotFound) {
			s.Log.WithError(err).WithFields(logrus.Fields{"server_group": id, "server": m}).Warn("a member still names its deleted group")
		}
	}
	s.Log.WithFields(logrus.Fields{"server_group": id, "project": c.Project}).Info("server group deleted")
	return nil
}

// placementGroup is the group a new server joins, as placement sees it:
// its policy and where its members run. The group must be the caller's
// project's and have room for one more member (server_group_members).
func (s *Servers) placementGroup(ctx context.Context, c Caller, id string) (*policy.Group, error) {
	g, _, err := s.groupStore().Load(ctx, c.Project, id) // decided on: the Store's current version
	if err != nil {
		return nil, err
	}
	if g.ID == "" {
		return nil, &Error{Field: "os:scheduler_hints", Message: fmt.Sprintf("Invalid input for field/attribute group: server group %s could not be found", id), Err: ErrInvalid}
	}
	if err := s.groupRoom(ctx, c, g); err != nil {
		return nil, err
	}
	return toPolicyGroup(g), nil
}

func toPolicyGroup(g NovaServerGroup) *policy.Group {
	pg := &policy.Group{ID: g.ID, Policy: g.Policy, Peers: map[string]int{}, MaxPerPeer: g.Rules[RuleMaxServerPerHost]}
	for _, peer := range g.Members {
		pg.Peers[peer]++
	}
	return pg
}

// groupRoom refuses a member past the project's server_group_members.
func (s *Servers) groupRoom(ctx context.Context, c Caller, g NovaServerGroup) error {
	limits, err := s.Quota.Quota(ctx, c.Project)
	if err != nil {
		return err
	}
	if l, ok := limits[quota.ServerGroupMembers]; ok && l >= 0 && len(g.Members) >= l {
		return &Error{Message: fmt.Sprintf("Quota exceeded, too many servers in group: server group %s holds %d of %d", g.ID, len(g.Members), l), Err: ErrQuotaExceeded}
	}
	return nil
}

// joinGroup records server id as a member of group gid running on peer,
// if the group's policy and member quota allow it now; a refusal says
// why, for the next peer to be tried.
func (s *Servers) joinGroup(ctx context.Context, c Caller, gid, id, peer string) error {
	for attempt := 0; ; attempt++ {
		g, at, err := s.groupStore().Load(ctx, c.Project, gid)
		if err != nil {
			return err
		}
		if g.ID == "" {
			return groupNotFound(gid)
		}
		if err := s.groupRoom(ctx, c, g); err != nil {
			return err
		}
		if ok, why := policy.GroupAllows(toPolicyGroup(g), peer); !ok {
			return &Error{Message: why, Err: ErrNoValidHost}
		}
		if g.Members == nil {
			g.Members = map[string]string{}
		}
		g.Members[id] = peer
		err = s.groupStore().CAS(ctx, c.Project, gid, g, at)
		if errors.Is(err, registry.ErrConflict) && attempt < 10 {
			continue
		}
		return err
	}
}

// leaveGroup removes server id from group gid (a failed boot, a delete).
func (s *Servers) leaveGroup(ctx context.Context, c Caller, gid, id string) {
	ctx = context.WithoutCancel(ctx)
	for attempt := 0; ; attempt++ {
		g, at, err := s.groupStore().Load(ctx, c.Project, gid)
		if err == nil && g.Members[id] == "" {
			return // the group or the membership is gone already
		}
		if err == nil {
			delete(g.Members, id)
			err = s.groupStore().CAS(ctx, c.Project, gid, g, at)
		}
		if errors.Is(err, registry.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			s.Log.WithError(err).WithFields(logrus.Fields{"server_group": gid, "server": id}).Warn("a server left in its group's members")
		}
		return
	}
}
