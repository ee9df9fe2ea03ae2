package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/registry"
)

// Store is the part of registry.Store identity uses.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

const (
	domainsPrefix     = "identity/domains/"
	domainNamesPrefix = "identity/domain-names/"
	projectsPrefix    = "identity/projects/"
	projectNamesPfx   = "identity/project-names/"
	usersPrefix       = "identity/users/"
	userNamesPrefix   = "identity/user-names/"
	rolesPrefix       = "identity/roles/"
	roleNamesPrefix   = "identity/role-names/"
	assignmentsPrefix = "identity/assignments/"
)

// nameKey encodes a name for use inside a key: names may hold '/', "..",
// or anything else a key may not.
func nameKey(prefix string, parts ...string) string {
	enc := make([]string, len(parts))
	for i, p := range parts {
		enc[i] = base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(p)))
	}
	return prefix + strings.Join(enc, "/")
}

// NewID returns a Keystone-style ID: 32 lowercase hex characters.
func NewID() string { return strings.ReplaceAll(uuid.NewString(), "-", "") }

// Directory keeps domains, projects, users, roles and assignments.
type Directory struct {
	store Store
	now   func() time.Time
}

// NewDirectory returns a directory over store.
func NewDirectory(store Store) *Directory {
	return &Directory{store: store, now: func() time.Time { return time.Now().UTC() }}
}

func validName(field, name string) error {
	if name == "" || len(name) > 255 || strings.ContainsFunc(name, unicode.IsControl) {
		return &registry.FieldError{Field: field, Reason: "must be 1-255 characters without control characters"}
	}
	return nil
}

// createNamed stores a record under recordKey and claims its unique name
// under nameIdx, both create-only; a taken name is ErrConflict.
func (d *Directory) createNamed(ctx context.Context, what, name, nameIdx, recordKey, id string, record any) error {
	if _, err := d.store.CAS(ctx, nameIdx, []byte(id), 0); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			return fmt.Errorf("%w: a %s named %q already exists", ErrConflict, what, name)
		}
		return err
	}
	raw, err := json.Marshal(record)
	if err == nil {
		_, err = d.store.CAS(ctx, recordKey, raw, 0)
	}
	if err != nil {
		_ = d.store.Delete(context.WithoutCancel(ctx), nameIdx)
		return fmt.Errorf("store %s %q: %w", what, name, err)
	}
	return nil
}

func getJSON[T any](ctx context.Context, s Store, key, what, id string) (T, error) {
	var v T
	if registry.ValidateKey(key) != nil {
		return v, fmt.Errorf("%w %s %s", ErrNotFound, what, id)
	}
	kv, err := s.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return v, fmt.Errorf("%w %s %s", ErrNotFound, what, id)
	}
	if err != nil {
		return v, err
	}
	err = json.Unmarshal(kv.Value, &v)
	return v, err
}

func listJSON[T any](ctx context.Context, s Store, prefix string) ([]T, error) {
	kvs, _, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return decodeAll[T](kvs)
}

// decodeAll decodes JSON records.
func decodeAll[T any](kvs []registry.KV) ([]T, error) {
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// byName resolves a name index to its record.
func byName[T any](ctx context.Context, s Store, idx, recordPrefix, what, name string) (T, error) {
	var zero T
	kv, err := s.Get(ctx, idx)
	if errors.Is(err, registry.ErrNotFound) {
		return zero, fmt.Errorf("%w %s %s", ErrNotFound, what, name)
	}
	if err != nil {
		return zero, err
	}
	return getJSON[T](ctx, s, recordPrefix+string(kv.Value), what, name)
}

// CreateDomain adds a domain.
func (d *Directory) CreateDomain(ctx context.Context, dom Domain) (Domain, error) {
	if err := validName("domain.name", dom.Name); err != nil {
		return Domain{}, err
	}
	if dom.ID == "" {
		dom.ID = NewID()
	}
	return dom, d.createNamed(ctx, "domain", dom.Name, nameKey(domainNamesPrefix, dom.Name), domainsPrefix+dom.ID, dom.ID, dom)
}

// GetDomain finds a domain by ID.
func (d *Directory) GetDomain(ctx context.Context, id string) (Domain, error) {
	return getJSON[Domain](ctx, d.store, domainsPrefix+id, "domain", id)
}

// FindDomain finds a domain by name (case-insensitive, as Keystone's).
func (d *Directory) FindDomain(ctx context.Context, name string) (Domain, error) {
	return byName[Domain](ctx, d.store, nameKey(domainNamesPrefix, name), domainsPrefix, "domain", name)
}

// ListDomains lists every domain.
func (d *Directory) ListDomains(ctx context.Context) ([]Domain, error) {
	return listJSON[Domain](ctx, d.store, domainsPrefix)
}

// CreateProject adds a project; names are unique within a domain.
func (d *Directory) CreateProject(ctx context.Context, p Project) (Project, error) {
	errs := []error{validName("project.name", p.Name)}
	if _, err := d.GetDomain(ctx, p.DomainID); errors.Is(err, ErrNotFound) {
		errs = append(errs, &registry.FieldError{Field: "project.domain_id", Reason: fmt.Sprintf("no domain %q", p.DomainID)})
	} else if err != nil {
		return Project{}, err // the Store did not answer: not the caller's mistake
	}
	if err := errors.Join(errs...); err != nil {
		return Project{}, err
	}
	if p.ID == "" {
		p.ID = NewID()
	}
	return p, d.createNamed(ctx, "project", p.Name, nameKey(projectNamesPfx, p.DomainID, p.Name), projectsPrefix+p.ID, p.ID, p)
}

// GetProject finds a project by ID.
func (d *Directory) GetProject(ctx context.Context, id string) (Project, error) {
	return getJSON[Project](ctx, d.store, projectsPrefix+id, "project", id)
}

// FindProject finds a project by domain and name.
func (d *Directory) FindProject(ctx context.Context, domainID, name string) (Project, error) {
	return byName[Project](ctx, d.store, nameKey(projectNamesPfx, domainID, name), projectsPrefix, "project", name)
}

// ListProjects lists every project.
func (d *Directory) ListProjects(ctx context.Context) ([]Project, error) {
	return listJSON[Project](ctx, d.store, projectsPrefix)
}

// DeleteProject removes a project and its role assignments.
func (d *Directory) DeleteProject(ctx context.Context, id string) error {
	p, err := d.GetProject(ctx, id)
	if err != nil {
		return err
	}
	kvs, _, err := d.store.List(ctx, assignmentsPrefix+id+"/")
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	errs := []error{d.store.Delete(ctx, projectsPrefix+id)}
	for _, kv := range kvs {
		errs = append(errs, d.store.Delete(bg, kv.Key))
	}
	errs = append(errs, d.store.Delete(bg, nameKey(projectNamesPfx, p.DomainID, p.Name)))
	return errors.Join(errs...)
}

// checkPassword applies the password rules; bcrypt reads at most 72 bytes,
// and a longer password would be silently truncated, so it is refused.
func checkPassword(password string) error {
	if len(password) < 8 || len(password) > 72 {
		return &registry.FieldError{Field: "user.password", Reason: "must be 8 to 72 bytes"}
	}
	return nil
}

// CreateUser adds a user with a password (hashed with bcrypt).
func (d *Directory) CreateUser(ctx context.Context, u User, password string) (User, error) {
	errs := []error{validName("user.name", u.Name)}
	if err := checkPassword(password); err != nil {
		errs = append(errs, err)
	}
	if _, err := d.GetDomain(ctx, u.DomainID); errors.Is(err, ErrNotFound) {
		errs = append(errs, &registry.FieldError{Field: "user.domain_id", Reason: fmt.Sprintf("no domain %q", u.DomainID)})
	} else if err != nil {
		return User{}, err // the Store did not answer: not the caller's mistake
	}
	if err := errors.Join(errs...); err != nil {
		return User{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return User{}, err
	}
	if u.ID == "" {
		u.ID = NewID()
	}
	u.PasswordHash, u.CreatedAt = string(hash), d.now()
	if err := d.createNamed(ctx, "user", u.Name, nameKey(userNamesPrefix, u.DomainID, u.Name), usersPrefix+u.ID, u.ID, u); err != nil {
		return User{}, err
	}
	u.PasswordHash = ""
	return u, nil
}

// SetPassword replaces a user's password.
func (d *Directory) SetPassword(ctx context.Context, id, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	u, err := getJSON[User](ctx, d.store, usersPrefix+id, "user", id)
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	u.PasswordHash = string(hash)
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	_, err = d.store.Put(ctx, usersPrefix+id, raw)
	return err
}

// UpdateUser applies change to a user and stores it; a rename moves the
// name index. ID, domain, password hash and creation time are kept
// (SetPassword changes the hash).
func (d *Directory) UpdateUser(ctx context.Context, id string, change func(*User)) (User, error) {
	u, err := updateNamed(ctx, d, "user", usersPrefix, id, change,
		func(cur, next *User) {
			next.ID, next.DomainID, next.PasswordHash, next.CreatedAt = cur.ID, cur.DomainID, cur.PasswordHash, cur.CreatedAt
		},
		func(u *User) (string, string) { return u.Name, nameKey(userNamesPrefix, u.DomainID, u.Name) })
	u.PasswordHash = ""
	return u, err
}

// UpdateProject applies change to a project and stores it; a rename moves
// the name index. ID and domain are kept.
func (d *Directory) UpdateProject(ctx context.Context, id string, change func(*Project)) (Project, error) {
	return updateNamed(ctx, d, "project", projectsPrefix, id, change,
		func(cur, next *Project) { next.ID, next.DomainID = cur.ID, cur.DomainID },
		func(p *Project) (string, string) { return p.Name, nameKey(projectNamesPfx, p.DomainID, p.Name) })
}

// updateNamed reads the record at prefix+id, applies change, restores what
// keep says may not change, moves the name index (nameOf gives a record's
// name and index key) when the name changed, and writes back by CAS.
func updateNamed[T any](ctx context.Context, d *Directory, what, prefix, id string, change func(*T), keep func(cur, next *T), nameOf func(*T) (string, string)) (T, error) {
	var zero T
	kv, err := d.store.Get(ctx, prefix+id)
	if errors.Is(err, registry.ErrNotFound) {
		return zero, fmt.Errorf("%w %s %s", ErrNotFound, what, id)
	}
	if err != nil {
		return zero, err
	}
	var cur T
	if err := json.Unmarshal(kv.Value, &cur); err != nil {
		return zero, err
	}
	next := cur
	change(&next)
	keep(&cur, &next)
	name, newIdx := nameOf(&next)
	if err := validName(what+".name", name); err != nil {
		return zero, err
	}
	_, oldIdx := nameOf(&cur)
	if err := d.rename(ctx, what, oldIdx, newIdx, name, id); err != nil {
		return zero, err
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return zero, err
	}
	if _, err := d.store.CAS(ctx, prefix+id, raw, kv.ModifyIndex); err != nil {
		// The record kept its name: give the index back to it.
		oldName, _ := nameOf(&cur)
		if rerr := d.rename(context.WithoutCancel(ctx), what, newIdx, oldIdx, oldName, id); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restore the name index: %w", rerr))
		}
		return zero, fmt.Errorf("update %s %s: %w", what, id, err)
	}
	return next, nil
}

// rename claims a new name index for id and releases the old one; the
// same name is a no-op.
func (d *Directory) rename(ctx context.Context, what, oldIdx, newIdx, newName, id string) error {
	if oldIdx == newIdx {
		return nil
	}
	if _, err := d.store.CAS(ctx, newIdx, []byte(id), 0); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			return fmt.Errorf("%w: a %s named %q already exists", ErrConflict, what, newName)
		}
		return err
	}
	return d.store.Delete(context.WithoutCancel(ctx), oldIdx)
}

// GetUser finds a user by ID; the password hash is not returned.
func (d *Directory) GetUser(ctx context.Context, id string) (User, error) {
	u, err := getJSON[User](ctx, d.store, usersPrefix+id, "user", id)
	u.PasswordHash = ""
	return u, err
}

// FindUser finds a user by domain and name; the hash is not returned.
func (d *Directory) FindUser(ctx context.Context, domainID, name string) (User, error) {
	u, err := byName[User](ctx, d.store, nameKey(userNamesPrefix, domainID, name), usersPrefix, "user", name)
	u.PasswordHash = ""
	return u, err
}

// ListUsers lists every user, without password hashes.
func (d *Directory) ListUsers(ctx context.Context) ([]User, error) {
	us, err := listJSON[User](ctx, d.store, usersPrefix)
	for i := range us {
		us[i].PasswordHash = ""
	}
	return us, err
}

// DeleteUser removes a user, its name and its role assignments. (Its
// tokens are the token service's to revoke: see Tokens.RevokeUser.)
func (d *Directory) DeleteUser(ctx context.Context, id string) error {
	u, err := d.GetUser(ctx, id)
	if err != nil {
		return err
	}
	as, err := d.Assignments(ctx, "", id)
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	errs := []error{d.store.Delete(ctx, usersPrefix+id), d.store.Delete(bg, nameKey(userNamesPrefix, u.DomainID, u.Name))}
	for _, a := range as {
		errs = append(errs, d.store.Delete(bg, assignmentKey(a.ProjectID, a.UserID, a.RoleID)))
	}
	return errors.Join(errs...)
}

// dummyHash keeps a failed lookup as slow as a failed password check, so
// timing does not tell which user names exist.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("cloudmux-identity-dummy"), bcrypt.DefaultCost)

// CheckPassword returns the user when password is right and the user and
// its domain are enabled. Every failure is the same ErrUnauthorized.
func (d *Directory) CheckPassword(ctx context.Context, u User, password string) (User, error) {
	full, err := getJSON[User](ctx, d.store, usersPrefix+u.ID, "user", u.ID)
	hash := []byte(full.PasswordHash)
	if err != nil || len(hash) == 0 {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil || !full.Enabled {
		return User{}, fmt.Errorf("%w: the user or password is wrong, or the user is disabled", ErrUnauthorized)
	}
	full.PasswordHash = ""
	return full, nil
}

// CreateRole adds a role.
func (d *Directory) CreateRole(ctx context.Context, r Role) (Role, error) {
	if err := validName("role.name", r.Name); err != nil {
		return Role{}, err
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	return r, d.createNamed(ctx, "role", r.Name, nameKey(roleNamesPrefix, r.Name), rolesPrefix+r.ID, r.ID, r)
}

// GetRole finds a role by ID.
func (d *Directory) GetRole(ctx context.Context, id string) (Role, error) {
	return getJSON[Role](ctx, d.store, rolesPrefix+id, "role", id)
}

// FindRole finds a role by name.
func (d *Directory) FindRole(ctx context.Context, name string) (Role, error) {
	return byName[Role](ctx, d.store, nameKey(roleNamesPrefix, name), rolesPrefix, "role", name)
}

// ListRoles lists every role.
func (d *Directory) ListRoles(ctx context.Context) ([]Role, error) {
	return listJSON[Role](ctx, d.store, rolesPrefix)
}

func assignmentKey(projectID, userID, roleID string) string {
	return assignmentsPrefix + projectID + "/" + userID + "/" + roleID
}

// Grant gives a user a role on a project (idempotent).
func (d *Directory) Grant(ctx context.Context, a Assignment) error {
	var errs []error
	if _, err := d.GetProject(ctx, a.ProjectID); err != nil {
		errs = append(errs, err)
	}
	if _, err := d.GetUser(ctx, a.UserID); err != nil {
		errs = append(errs, err)
	}
	if _, err := d.GetRole(ctx, a.RoleID); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	raw, _ := json.Marshal(a)
	_, err := d.store.Put(ctx, assignmentKey(a.ProjectID, a.UserID, a.RoleID), raw)
	return err
}

// Ungrant removes a role assignment.
func (d *Directory) Ungrant(ctx context.Context, a Assignment) error {
	key := assignmentKey(a.ProjectID, a.UserID, a.RoleID)
	if _, err := d.store.Get(ctx, key); errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("%w role assignment", ErrNotFound)
	}
	return d.store.Delete(ctx, key)
}

// Assignments lists assignments, narrowed by project and/or user.
func (d *Directory) Assignments(ctx context.Context, projectID, userID string) ([]Assignment, error) {
	prefix := assignmentsPrefix
	if projectID != "" {
		prefix += projectID + "/"
		if userID != "" {
			prefix += userID + "/"
		}
	}
	// One user's assignments on every project come from the cache's
	// records by user, not a walk of every project's.
	if c, ok := d.store.(*Cache); ok && projectID == "" {
		if kvs, found := c.assignmentsOf(userID); found {
			return decodeAll[Assignment](kvs)
		}
	}
	all, err := listJSON[Assignment](ctx, d.store, prefix)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, a := range all {
		if userID == "" || a.UserID == userID {
			out = append(out, a)
		}
	}
	return out, nil
}

// RolesOn returns the roles a user holds on a project.
func (d *Directory) RolesOn(ctx context.Context, projectID, userID string) ([]Role, error) {
	as, err := d.Assignments(ctx, projectID, userID)
	if err != nil {
		return nil, err
	}
	roles := make([]Role, 0, len(as))
	for _, a := range as {
		r, err := d.GetRole(ctx, a.RoleID)
		if errors.Is(err, ErrNotFound) {
			continue // a role deleted under an assignment grants nothing
		}
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, nil
}
