package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

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
	groupsPrefix      = "identity/groups/"
	groupNamesPrefix  = "identity/group-names/"
	// groupMembersPrefix holds group/user and userGroupsPrefix user/group:
	// a group's members and a user's groups are each one listing.
	groupMembersPrefix = "identity/group-members/"
	userGroupsPrefix   = "identity/user-groups/"
	// impliedRolesPrefix holds prior/implied role rules.
	impliedRolesPrefix = "identity/implied-roles/"
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
	store       Store
	now         func() time.Time
	policy      PasswordPolicy
	policyRegex *regexp.Regexp
	passwordHasher
}

// NewDirectory returns a directory over store (opts are for tests: see
// WithHashCost).
func NewDirectory(store Store, opts ...Option) *Directory {
	d := &Directory{store: store, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(d)
	}
	return d
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
	errs := []error{validName("project.name", p.Name), validTags("project.tags", p.Tags)}
	if err := d.checkParent(ctx, &p); err != nil {
		return Project{}, err
	}
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
	if kids, err := d.Children(ctx, id); err != nil {
		return err
	} else if len(kids) > 0 {
		return fmt.Errorf("%w: cannot delete project %s: it is not a leaf in the hierarchy (delete its %d children first)", ErrForbidden, p.Name, len(kids))
	}
	kvs, _, err := d.store.List(ctx, assignmentsPrefix+id+"/")
	if err != nil {
		return err
	}
	// and what it granted to its subtree (OS-INHERIT)
	inherited, _, err := d.store.List(ctx, assignmentsPrefix+inheritedProjectTarget(id)+"/")
	if err != nil {
		return err
	}
	kvs = append(kvs, inherited...)
	bg := context.WithoutCancel(ctx)
	errs := []error{d.store.Delete(ctx, projectsPrefix+id)}
	for _, kv := range kvs {
		errs = append(errs, d.store.Delete(bg, kv.Key))
	}
	errs = append(errs, d.store.Delete(bg, nameKey(projectNamesPfx, p.DomainID, p.Name)))
	return errors.Join(errs...)
}

// checkPassword applies the rules every password meets (the configured
// policy adds its own: PasswordPolicy). Keystone's default sets no
// minimum; bcrypt reads at most 72 bytes, and a longer password would be
// silently truncated, so it is refused.
func checkPassword(password string) error {
	if len(password) < 1 || len(password) > 72 {
		return &registry.FieldError{Field: "user.password", Reason: "must be 1 to 72 bytes"}
	}
	return nil
}

// CreateUser adds a user with a password (hashed with bcrypt).
func (d *Directory) CreateUser(ctx context.Context, u User, password string) (User, error) {
	errs := []error{validName("user.name", u.Name)}
	if err := d.checkPolicy(password); err != nil {
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
	hash, err := d.hash([]byte(password))
	if err != nil {
		return User{}, err
	}
	if u.ID == "" {
		u.ID = NewID()
	}
	u.PasswordHash, u.CreatedAt = string(hash), d.now()
	u.PasswordChangedAt = u.CreatedAt
	if err := d.createNamed(ctx, "user", u.Name, nameKey(userNamesPrefix, u.DomainID, u.Name), usersPrefix+u.ID, u.ID, u); err != nil {
		return User{}, err
	}
	return d.public(u), nil
}

// UpdateUser applies change to a user and stores it; a rename moves the
// name index. ID, domain, password hash and creation time are kept
// (SetPassword changes the hash).
func (d *Directory) UpdateUser(ctx context.Context, id string, change func(*User)) (User, error) {
	u, err := updateNamed(ctx, d, "user", usersPrefix, id, change,
		func(cur, next *User) {
			name, project, enabled, options := next.Name, next.DefaultProjectID, next.Enabled, next.Options
			*next = *cur
			next.Name, next.DefaultProjectID, next.Enabled, next.Options = name, project, enabled, options
		},
		func(u *User) (string, string) { return u.Name, nameKey(userNamesPrefix, u.DomainID, u.Name) })
	return d.public(u), err
}

// UpdateProject applies change to a project and stores it; a rename moves
// the name index. ID and domain are kept.
func (d *Directory) UpdateProject(ctx context.Context, id string, change func(*Project)) (Project, error) {
	return updateNamed(ctx, d, "project", projectsPrefix, id, change,
		func(cur, next *Project) { next.ID, next.DomainID, next.ParentID = cur.ID, cur.DomainID, cur.ParentID },
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
	return d.public(u), err
}

// FindUser finds a user by domain and name; the hash is not returned.
func (d *Directory) FindUser(ctx context.Context, domainID, name string) (User, error) {
	u, err := byName[User](ctx, d.store, nameKey(userNamesPrefix, domainID, name), usersPrefix, "user", name)
	return d.public(u), err
}

// ListUsers lists every user, without password hashes.
func (d *Directory) ListUsers(ctx context.Context) ([]User, error) {
	us, err := listJSON[User](ctx, d.store, usersPrefix)
	for i := range us {
		us[i] = d.public(us[i])
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
		errs = append(errs, d.store.Delete(bg, a.key()))
	}
	errs = append(errs, d.forgetMemberships(bg, id))
	return ignoreNotFound(errors.Join(errs...))
}

// createJSON stores a new record of an unnamed kind; an ID in use is
// ErrConflict.
func createJSON(ctx context.Context, s Store, key, what, id string, v any) error {
	if registry.ValidateKey(key) != nil {
		return &registry.FieldError{Field: what + ".id", Reason: "is not a valid ID"}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.CAS(ctx, key, raw, 0); errors.Is(err, registry.ErrConflict) {
		return fmt.Errorf("%w: a %s with ID %q already exists", ErrConflict, what, id)
	} else if err != nil {
		return fmt.Errorf("store %s %s: %w", what, id, err)
	}
	return nil
}

// updateJSON reads the record at prefix+id, applies change, lets check
// restore what may not change and refuse what is invalid, and writes back
// by CAS.
func updateJSON[T any](ctx context.Context, d *Directory, prefix, what, id string, change func(*T), check func(cur, next *T) error) (T, error) {
	var zero T
	if registry.ValidateKey(prefix+id) != nil {
		return zero, fmt.Errorf("%w %s %s", ErrNotFound, what, id)
	}
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
	if err := check(&cur, &next); err != nil {
		return zero, err
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return zero, err
	}
	if _, err := d.store.CAS(ctx, prefix+id, raw, kv.ModifyIndex); err != nil {
		return zero, fmt.Errorf("update %s %s: %w", what, id, err)
	}
	return next, nil
}
