package identity_test

import (
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestUserAssignmentsFromMemory: a user's assignments on every project
// (GET /v3/auth/projects) come from the cache's records by user: no Store
// read, only that user's records, whatever other users hold; a grant or
// an ungrant made on another replica shows once its watch delivers it.
func TestUserAssignmentsFromMemory(t *testing.T) {
	ctx := t.Context()
	store := registry.NewMemory()
	a := newReplica(ctx, t, store)
	boot, err := a.dir.Bootstrap(ctx, "admin-password", true)
	if err != nil {
		t.Fatal(err)
	}
	b := newReplica(ctx, t, store)
	member := boot.Roles[identity.RoleMember].ID
	users := map[string]identity.User{}
	projects := map[string]identity.Project{}
	for _, name := range []string{"ann", "bob"} {
		u, err := a.dir.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, "password-"+name)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	for _, name := range []string{"p1", "p2", "p3"} {
		p, err := a.dir.CreateProject(ctx, identity.Project{Name: name, DomainID: identity.DefaultDomainID, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		projects[name] = p
	}
	grant := func(d *identity.Directory, user, project string) {
		t.Helper()
		if err := d.Grant(ctx, identity.Assignment{UserID: users[user].ID, ProjectID: projects[project].ID, RoleID: member}); err != nil {
			t.Fatal(err)
		}
	}
	grant(a.dir, "ann", "p1")
	grant(a.dir, "ann", "p2")
	grant(a.dir, "bob", "p2")
	grant(a.dir, "bob", "p3")
	a.caughtUp(ctx, t)
	projectsOf := func(t *testing.T, r *replica, user string) []string {
		t.Helper()
		as, err := r.dir.Assignments(ctx, "", users[user].ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range as {
			if x.UserID != users[user].ID {
				t.Fatalf("%s's assignments hold %+v", user, x)
			}
			for name, p := range projects {
				if p.ID == x.ProjectID {
					out = append(out, name)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		user string
		want []string
	}{
		{"ann", "ann", []string{"p1", "p2"}},
		{"bob", "bob", []string{"p2", "p3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.store.Reset()
			if got := projectsOf(t, a, tt.user); !slices.Equal(got, tt.want) {
				t.Fatalf("projects = %v, want %v", got, tt.want)
			}
			if n := a.store.Reads(); n != 0 {
				t.Fatalf("%d Store reads, want 0", n)
			}
		})
	}

	// Another replica grants and ungrants: here once the watch delivers.
	grant(b.dir, "ann", "p3")
	if err := b.dir.Ungrant(ctx, identity.Assignment{UserID: users["ann"].ID, ProjectID: projects["p1"].ID, RoleID: member}); err != nil {
		t.Fatal(err)
	}
	a.caughtUp(ctx, t)
	if got := projectsOf(t, a, "ann"); !slices.Equal(got, []string{"p2", "p3"}) {
		t.Fatalf("after b's grant and ungrant: %v, want [p2 p3]", got)
	}
}
