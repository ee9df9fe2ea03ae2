package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/registry"
)

// Bootstrapped names what Bootstrap made or found.
type Bootstrapped struct {
	Domain  Domain
	Project Project
	User    User
	Roles   map[string]Role
	// Created is true when this call created the admin user (so its
	// password is the one given), false when the user existed already.
	Created bool
	// PasswordReset is true when an existing admin's password was changed.
	PasswordReset bool
}

// Bootstrap gives an empty directory what devstack has: domain Default,
// roles admin/member/reader, project admin, user admin holding admin on it.
// It is idempotent. The admin's password is set when the user is created;
// for an existing admin it is replaced only when reset is true. Two brokers
// bootstrapping at once agree: the loser of each create finds the winner's.
func (d *Directory) Bootstrap(ctx context.Context, password string, reset bool) (Bootstrapped, error) {
	var b Bootstrapped
	var err error
	if b.Domain, err = ensure(func() (Domain, error) { return d.GetDomain(ctx, DefaultDomainID) },
		func() (Domain, error) {
			return d.CreateDomain(ctx, Domain{ID: DefaultDomainID, Name: DefaultDomainName, Description: "The default domain", Enabled: true})
		}); err != nil {
		return b, fmt.Errorf("bootstrap domain: %w", err)
	}
	b.Roles = map[string]Role{}
	for _, name := range []string{RoleAdmin, RoleMember, RoleReader} {
		r, err := ensure(func() (Role, error) { return d.FindRole(ctx, name) },
			func() (Role, error) { return d.CreateRole(ctx, Role{Name: name}) })
		if err != nil {
			return b, fmt.Errorf("bootstrap role %s: %w", name, err)
		}
		b.Roles[name] = r
	}
	if err := d.bootstrapImpliedRoles(ctx, b.Roles); err != nil {
		return b, err
	}
	if b.Project, err = ensure(func() (Project, error) { return d.FindProject(ctx, DefaultDomainID, AdminProjectName) },
		func() (Project, error) {
			return d.CreateProject(ctx, Project{Name: AdminProjectName, DomainID: DefaultDomainID, Description: "Bootstrap project", Enabled: true})
		}); err != nil {
		return b, fmt.Errorf("bootstrap project: %w", err)
	}
	b.User, err = d.FindUser(ctx, DefaultDomainID, AdminUserName)
	switch {
	case errors.Is(err, ErrNotFound):
		b.User, err = d.CreateUser(ctx, User{Name: AdminUserName, DomainID: DefaultDomainID, Enabled: true, DefaultProjectID: b.Project.ID}, password)
		if errors.Is(err, ErrConflict) { // another broker won
			b.User, err = d.FindUser(ctx, DefaultDomainID, AdminUserName)
		} else {
			b.Created = err == nil
		}
	case err == nil && reset:
		// Reset only a password that differs: replicas restarting with the
		// same CLOUDMUX_ADMIN_PASSWORD must not undo an operator's change
		// back and forth, and a real change is reported (the caller voids
		// the admin's tokens).
		if _, cerr := d.CheckPassword(ctx, b.User, password); cerr != nil {
			err = d.SetPassword(ctx, b.User.ID, password)
			b.PasswordReset = err == nil
		}
	}
	if err != nil {
		return b, fmt.Errorf("bootstrap admin user: %w", err)
	}
	if err := d.Grant(ctx, Assignment{UserID: b.User.ID, ProjectID: b.Project.ID, RoleID: b.Roles[RoleAdmin].ID}); err != nil {
		return b, fmt.Errorf("bootstrap admin role: %w", err)
	}
	return b, nil
}

// ensure returns what get finds, else what create makes; when create loses a
// race (ErrConflict), what get finds then.
func ensure[T any](get, create func() (T, error)) (T, error) {
	v, err := get()
	if !errors.Is(err, ErrNotFound) {
		return v, err
	}
	v, err = create()
	if errors.Is(err, ErrConflict) {
		return get()
	}
	return v, err
}

// impliedRulesMade marks that bootstrap made the default inference rules
// once: an admin who deletes one keeps it deleted across restarts.
const impliedRulesMade = "identity/bootstrap/implied-roles"

// bootstrapImpliedRoles makes admin imply member imply reader, as
// Keystone's bootstrap does: real rules an admin may list and change.
func (d *Directory) bootstrapImpliedRoles(ctx context.Context, roles map[string]Role) error {
	if _, err := d.store.Get(ctx, impliedRulesMade); err == nil {
		return nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("bootstrap implied roles: %w", err)
	}
	for _, rule := range [][2]string{{RoleAdmin, RoleMember}, {RoleMember, RoleReader}} {
		if _, err := d.CreateImpliedRole(ctx, roles[rule[0]].ID, roles[rule[1]].ID); err != nil {
			return fmt.Errorf("bootstrap implied role %s: %w", rule[0], err)
		}
	}
	if _, err := d.store.Put(ctx, impliedRulesMade, []byte("{}")); err != nil {
		return fmt.Errorf("bootstrap implied roles: %w", err)
	}
	return nil
}
