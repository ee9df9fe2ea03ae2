package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Groups: records under identity/groups/<id>, names unique per domain.
// Membership is two keys, identity/group-members/<group>/<user> and
// identity/user-groups/<user>/<group>, so a group's members and a user's
// groups are each one listing, from memory.

// CreateGroup adds a group to a domain.
func (d *Directory) CreateGroup(ctx context.Context, g Group) (Group, error) {
	errs := []error{validName("group.name", g.Name)}
	if _, err := d.GetDomain(ctx, g.DomainID); errors.Is(err, ErrNotFound) {
		errs = append(errs, &registry.FieldError{Field: "group.domain_id", Reason: fmt.Sprintf("no domain %q", g.DomainID)})
	} else if err != nil {
		return Group{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return Group{}, err
	}
	g.ID = NewID()
	return g, d.createNamed(ctx, "group", g.Name, nameKey(groupNamesPrefix, g.DomainID, g.Name), groupsPrefix+g.ID, g.ID, g)
}

// GetGroup finds a group by ID.
func (d *Directory) GetGroup(ctx context.Context, id string) (Group, error) {
	return getJSON[Group](ctx, d.store, groupsPrefix+id, "group", id)
}

// ListGroups lists every group.
func (d *Directory) ListGroups(ctx context.Context) ([]Group, error) {
	return listJSON[Group](ctx, d.store, groupsPrefix)
}

// UpdateGroup applies change to a group; ID and domain are kept.
func (d *Directory) UpdateGroup(ctx context.Context, id string, change func(*Group)) (Group, error) {
	return updateNamed(ctx, d, "group", groupsPrefix, id, change,
		func(cur, next *Group) { next.ID, next.DomainID = cur.ID, cur.DomainID },
		func(g *Group) (string, string) { return g.Name, nameKey(groupNamesPrefix, g.DomainID, g.Name) })
}

// DeleteGroup removes a group, its memberships and its role assignments,
// and returns the users who were members (their tokens carry the group's
// roles: the caller revokes them).
func (d *Directory) DeleteGroup(ctx context.Context, id string) ([]string, error) {
	g, err := d.GetGroup(ctx, id)
	if err != nil {
		return nil, err
	}
	members, err := d.GroupMembers(ctx, id)
	if err != nil {
		return nil, err
	}
	grants, err := d.ListAssignments(ctx, AssignmentFilter{GroupID: id})
	if err != nil {
		return nil, err
	}
	bg := context.WithoutCancel(ctx)
	errs := []error{d.store.Delete(ctx, groupsPrefix+id), d.store.Delete(bg, nameKey(groupNamesPrefix, g.DomainID, g.Name))}
	for _, u := range members {
		errs = append(errs, d.store.Delete(bg, groupMembersPrefix+id+"/"+u), d.store.Delete(bg, userGroupsPrefix+u+"/"+id))
	}
	for _, a := range grants {
		errs = append(errs, d.store.Delete(bg, a.key()))
	}
	return members, ignoreNotFound(errors.Join(errs...))
}

// ignoreNotFound drops the Store's not-found among errors of deletes that
// race with another replica's (the record is gone either way).
func ignoreNotFound(err error) error {
	if err == nil {
		return nil
	}
	var keep []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !errors.Is(e, registry.ErrNotFound) {
				keep = append(keep, e)
			}
		}
		return errors.Join(keep...)
	}
	if errors.Is(err, registry.ErrNotFound) {
		return nil
	}
	return err
}

// AddToGroup makes a user a member of a group (idempotent).
func (d *Directory) AddToGroup(ctx context.Context, groupID, userID string) error {
	if _, err := d.GetGroup(ctx, groupID); err != nil {
		return err
	}
	if _, err := d.GetUser(ctx, userID); err != nil {
		return err
	}
	if _, err := d.store.Put(ctx, groupMembersPrefix+groupID+"/"+userID, []byte("{}")); err != nil {
		return err
	}
	_, err := d.store.Put(ctx, userGroupsPrefix+userID+"/"+groupID, []byte("{}"))
	return err
}

// RemoveFromGroup ends a membership; not a member is ErrNotFound.
func (d *Directory) RemoveFromGroup(ctx context.Context, groupID, userID string) error {
	ok, err := d.InGroup(ctx, groupID, userID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: user %s is not a member of group %s", ErrNotFound, userID, groupID)
	}
	return ignoreNotFound(errors.Join(d.store.Delete(ctx, userGroupsPrefix+userID+"/"+groupID),
		d.store.Delete(context.WithoutCancel(ctx), groupMembersPrefix+groupID+"/"+userID)))
}

// InGroup reports whether a user is a member of a group.
func (d *Directory) InGroup(ctx context.Context, groupID, userID string) (bool, error) {
	key := userGroupsPrefix + userID + "/" + groupID
	if registry.ValidateKey(key) != nil || strings.Count(key, "/") != 3 {
		return false, nil
	}
	_, err := d.store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// lastSegments returns the last key segment of each record.
func lastSegments(kvs []registry.KV) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Key[strings.LastIndex(kv.Key, "/")+1:])
	}
	return out
}

// GroupMembers lists the IDs of a group's members.
func (d *Directory) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	if strings.Contains(groupID, "/") {
		return nil, nil
	}
	kvs, err := d.listDir(ctx, groupMembersPrefix+groupID+"/")
	return lastSegments(kvs), err
}

// groupIDsOf lists the IDs of the groups a user is in.
func (d *Directory) groupIDsOf(ctx context.Context, userID string) ([]string, error) {
	if userID == "" || strings.Contains(userID, "/") {
		return nil, nil
	}
	kvs, err := d.listDir(ctx, userGroupsPrefix+userID+"/")
	return lastSegments(kvs), err
}

// GroupsOf lists the groups a user is in.
func (d *Directory) GroupsOf(ctx context.Context, userID string) ([]Group, error) {
	ids, err := d.groupIDsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Group, 0, len(ids))
	for _, id := range ids {
		g, err := d.GetGroup(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted while we read
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// forgetMemberships removes a deleted user from every group.
func (d *Directory) forgetMemberships(ctx context.Context, userID string) error {
	gs, err := d.groupIDsOf(ctx, userID)
	if err != nil {
		return err
	}
	var errs []error
	for _, g := range gs {
		errs = append(errs, d.store.Delete(ctx, groupMembersPrefix+g+"/"+userID), d.store.Delete(ctx, userGroupsPrefix+userID+"/"+g))
	}
	return ignoreNotFound(errors.Join(errs...))
}
