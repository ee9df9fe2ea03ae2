package focus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
)

// Store is the part of registry.Store the catalog uses.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, index uint64) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
}

var _ Store = registry.Store(nil)

// Catalog is the Focus catalog over a Store. Every template and binding
// belongs to a project (names are per project); a cloud admin may publish
// a template version, which every project then reads (never writes).
type Catalog struct {
	Store Store
	// Memory, when set (and Run), serves lists and latest versions from
	// memory; without it they are read from the Store.
	Memory *Memory
	// Now is the clock (tests pin it); nil is time.Now.
	Now func() time.Time
}

const prefix = "focus/"

// Version is one immutable template version.
type Version struct {
	// Project owns the version.
	Project string `json:"project"`
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Hash is the SHA-256 of Source: pushing the same bytes again is a no-op.
	Hash        string           `json:"hash"`
	Format      templates.Format `json:"format"`
	Description string           `json:"description,omitempty"`
	// Uses are the versions this one extends or nests, "NAME@VERSION", as
	// its project resolved them when it was pushed.
	Uses      []string  `json:"uses,omitempty"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	// Public is set on reads when a cloud admin published the version.
	Public bool `json:"public,omitempty"`
}

// Ref is "NAME@VERSION".
func (v Version) Ref() string { return fmt.Sprintf("%s@%d", v.Name, v.Version) }

// Template parses the version's source (validated when pushed).
func (v Version) Template() (*templates.Template, error) { return templates.Parse([]byte(v.Source)) }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidName checks a template or binding name.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q: want 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// validProject keeps a project ID from shaping another key.
func validProject(project string) error {
	if project == "" || strings.ContainsAny(project, "/@:") || project == "." || project == ".." {
		return fmt.Errorf("%w: project %q", ErrInvalid, project)
	}
	return nil
}

func (c *Catalog) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// projectPrefix is where everything a project owns lives.
func projectPrefix(project string) string { return prefix + "projects/" + project + "/" }

func versionsPrefix(project, kind, name string) string {
	return fmt.Sprintf("%s%s/%s/versions/", projectPrefix(project), kind, name)
}

func versionKey(project, kind, name string, v int) string {
	return versionIn(versionsPrefix(project, kind, name), v)
}

// versionIn is the key of version v under a versions prefix.
func versionIn(versions string, v int) string { return fmt.Sprintf("%s%08d", versions, v) }

func hashKey(project, kind, name, hash string) string {
	return fmt.Sprintf("%s%s/%s/hashes/%s", projectPrefix(project), kind, name, hash)
}

// Push stores source as the next version of the project's template name,
// or, when a version of it already holds exactly these bytes, returns that
// version (created false). The source must parse and validate; the
// versions it extends or nests must be the project's own or public, and
// are recorded as used by it.
func (c *Catalog) Push(ctx context.Context, project, name string, source []byte, by string) (v Version, created bool, err error) {
	if err := validProject(project); err != nil {
		return Version{}, false, err
	}
	if err := ValidName(name); err != nil {
		return Version{}, false, err
	}
	sum := sha256.Sum256(source)
	hash := hex.EncodeToString(sum[:])
	if existing, err := c.byHash(ctx, project, "templates", name, hash); err == nil {
		v, err := c.own(ctx, project, name, existing)
		return v, false, err
	} else if !errors.Is(err, ErrNotFound) {
		return Version{}, false, err
	}
	t, err := templates.Parse(source)
	if err != nil {
		return Version{}, false, err
	}
	uses := t.Uses()
	for i, u := range uses {
		un, uv, _ := strings.Cut(u, "@")
		used, err := c.Get(ctx, project, un, uv)
		if err != nil {
			return Version{}, false, fmt.Errorf("%w: uses %s: %w", templates.ErrInvalid, u, err)
		}
		uses[i] = used.Ref()
	}
	v = Version{Project: project, Name: name, Hash: hash, Format: t.Format, Description: t.Description, Uses: uses,
		Source: string(source), CreatedAt: c.now(), CreatedBy: by}
	if _, err := templates.Flatten(ctx, t, c.For(project)); err != nil {
		return Version{}, false, err
	}
	n, err := c.create(ctx, project, "templates", name, hash, func(n int) any { v.Version = n; return v })
	if err != nil {
		var taken errHashTaken
		if errors.As(err, &taken) {
			v, err := c.own(ctx, project, name, strconv.Itoa(int(taken)))
			return v, false, err
		}
		return Version{}, false, err
	}
	v.Version = n
	for _, u := range uses {
		if err := c.RecordUse(ctx, project, u, "template:"+v.Ref()); err != nil {
			return v, true, err
		}
	}
	return v, true, nil
}

type errHashTaken int

func (e errHashTaken) Error() string {
	return fmt.Sprintf("content already stored as version %d", int(e))
}

// create claims hash for kind/name, then writes the next version with a
// create-only CAS (retrying when another writer took the number), then
// points the hash at it. The claim comes first so that two concurrent
// pushes of the same bytes never both take a number: writing the version
// first and removing the loser's afterwards leaves a hole in the
// numbering whenever a third push landed in between. A concurrent push of
// the same bytes waits for the claim's owner and gets errHashTaken naming
// its version. A claim whose owner died (a crash between claim and
// version) is taken over once it is older than staleClaim.
func (c *Catalog) create(ctx context.Context, project, kind, name, hash string, record func(n int) any) (int, error) {
	hk := hashKey(project, kind, name, hash)
	claimIdx, err := c.claimHash(ctx, hk)
	if err != nil {
		return 0, err
	}
	n, err := c.nextVersion(ctx, project, kind, name, record)
	if err != nil {
		// Give the claim back so the same bytes can be pushed again.
		_ = c.Store.DeleteCAS(context.WithoutCancel(ctx), hk, claimIdx)
		return 0, err
	}
	// Version n exists now: pointing the hash at it must not be cut short
	// by the caller going away, or the claim would block these bytes
	// until it went stale.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := c.Store.CAS(fctx, hk, []byte(strconv.Itoa(n)), claimIdx); err != nil {
		// Our claim was taken over as stale while we held it: the version
		// stands, but the content now belongs to the other push.
		if errors.Is(err, registry.ErrConflict) {
			if other, oerr := c.waitHash(ctx, hk); oerr == nil {
				return 0, errHashTaken(other)
			}
		}
		return 0, err
	}
	return n, nil
}

// staleClaim is how long a pending hash claim protects its owner. A push
// takes milliseconds between claim and version; a claim this old belongs
// to a broker that died in between.
const staleClaim = 2 * time.Minute

const pendingPrefix = "pending "

// claimHash takes hk for this push, returning the claim's modify index, or
// errHashTaken when another push of the same bytes already owns it.
func (c *Catalog) claimHash(ctx context.Context, hk string) (uint64, error) {
	claim := []byte(pendingPrefix + strconv.FormatInt(c.now().UnixNano(), 10))
	for {
		idx, err := c.Store.CAS(ctx, hk, claim, 0)
		if err == nil {
			return idx, nil
		}
		if !errors.Is(err, registry.ErrConflict) {
			return 0, err
		}
		kv, err := c.Store.Get(ctx, hk)
		if errors.Is(err, registry.ErrNotFound) {
			continue // the owner gave it back: try again
		} else if err != nil {
			return 0, err
		}
		if n, ok := hashVersion(kv.Value); ok {
			return 0, errHashTaken(n)
		}
		if at, ok := pendingSince(kv.Value); ok && c.now().Sub(at) > staleClaim {
			idx, err := c.Store.CAS(ctx, hk, claim, kv.ModifyIndex)
			if err == nil {
				return idx, nil
			} else if !errors.Is(err, registry.ErrConflict) {
				return 0, err
			}
			continue
		}
		n, err := c.waitHash(ctx, hk)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return 0, errHashTaken(n)
	}
}

// waitHash waits for a pending claim at hk to become a version number. It
// returns ErrNotFound when the claim was given back or went stale.
func (c *Catalog) waitHash(ctx context.Context, hk string) (int, error) {
	pause := 10 * time.Millisecond
	for {
		kv, err := c.Store.Get(ctx, hk)
		if errors.Is(err, registry.ErrNotFound) {
			return 0, ErrNotFound
		} else if err != nil {
			return 0, err
		}
		if n, ok := hashVersion(kv.Value); ok {
			return n, nil
		}
		if at, ok := pendingSince(kv.Value); !ok || c.now().Sub(at) > staleClaim {
			return 0, ErrNotFound
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

func hashVersion(v []byte) (int, bool) {
	n, err := strconv.Atoi(string(v))
	return n, err == nil && n > 0
}

func pendingSince(v []byte) (time.Time, bool) {
	s, ok := strings.CutPrefix(string(v), pendingPrefix)
	if !ok {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// nextVersion writes record(n) at the first free version number.
func (c *Catalog) nextVersion(ctx context.Context, project, kind, name string, record func(n int) any) (int, error) {
	for range 50 {
		latest, err := c.latest(ctx, versionsPrefix(project, kind, name))
		if err != nil {
			return 0, err
		}
		n := latest + 1
		b, err := json.Marshal(record(n))
		if err != nil {
			return 0, err
		}
		idx, err := c.Store.CAS(ctx, versionKey(project, kind, name, n), b, 0)
		if errors.Is(err, registry.ErrConflict) {
			continue
		} else if err != nil {
			return 0, err
		}
		c.Memory.wrote(versionKey(project, kind, name, n), b, idx)
		return n, nil
	}
	return 0, fmt.Errorf("focus: %s %s: too many concurrent pushes", kind, name)
}

func (c *Catalog) byHash(ctx context.Context, project, kind, name, hash string) (string, error) {
	kv, err := c.Store.Get(ctx, hashKey(project, kind, name, hash))
	if errors.Is(err, registry.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	if _, ok := hashVersion(kv.Value); !ok {
		return "", ErrNotFound // a push of these bytes is under way: create waits for it
	}
	return string(kv.Value), nil
}

// versionNumber reads "3", "latest" or "" against a versions prefix.
func (c *Catalog) versionNumber(ctx context.Context, versions, what, version string) (int, error) {
	if version == "" || version == "latest" {
		n, err := c.latest(ctx, versions)
		if err == nil && n == 0 {
			return 0, fmt.Errorf("%w: %s", ErrNotFound, what)
		}
		return n, err
	}
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: version %q: want a number or latest", ErrInvalid, version)
	}
	return n, nil
}

// Get returns version ("3", "latest" or "") of template name as project
// sees it: its own template of that name, or, when it has none, the
// public one. Another project's private template is not found.
func (c *Catalog) Get(ctx context.Context, project, name, version string) (Version, error) {
	if err := validProject(project); err != nil {
		return Version{}, err
	}
	if ValidName(name) != nil {
		return Version{}, fmt.Errorf("%w: template %q", ErrNotFound, name)
	}
	v, err := c.own(ctx, project, name, version)
	if !errors.Is(err, ErrNotFound) {
		if err == nil {
			v.Public = c.isPublic(ctx, v)
		}
		return v, err
	}
	if mine, lerr := c.latest(ctx, versionsPrefix(project, "templates", name)); lerr != nil || mine > 0 {
		// The project's own name shadows the public one.
		return Version{}, errors.Join(err, lerr)
	}
	return c.public(ctx, name, version)
}

// own reads one of the project's own versions.
func (c *Catalog) own(ctx context.Context, project, name, version string) (Version, error) {
	var v Version
	err := c.get(ctx, project, "templates", name, version, &v)
	if err == nil && v.Project == "" {
		v.Project = project
	}
	return v, err
}

func (c *Catalog) get(ctx context.Context, project, kind, name, version string, into any) error {
	what := fmt.Sprintf("%s %q", strings.TrimSuffix(kind, "s"), name)
	n, err := c.versionNumber(ctx, versionsPrefix(project, kind, name), what, version)
	if err != nil {
		return err
	}
	kv, err := c.Store.Get(ctx, versionKey(project, kind, name, n))
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("%w: %s %s@%d", ErrNotFound, strings.TrimSuffix(kind, "s"), name, n)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(kv.Value, into)
}

// For is the catalog as project sees it, for resolving extends and nested
// templates: its own templates, then public ones.
func (c *Catalog) For(project string) templates.Resolver { return scope{c, project} }

type scope struct {
	c       *Catalog
	project string
}

func (s scope) Resolve(ctx context.Context, name, version string) (*templates.Template, error) {
	v, err := s.c.Get(ctx, s.project, name, version)
	if err != nil {
		return nil, err
	}
	return v.Template()
}

// Versions lists every version of template name as project sees it (its
// own, or the published versions of the public one), oldest first.
func (c *Catalog) Versions(ctx context.Context, project, name string) ([]Version, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	if ValidName(name) != nil {
		return nil, nil
	}
	kvs, _, err := c.Store.List(ctx, versionsPrefix(project, "templates", name))
	if err != nil {
		return nil, err
	}
	if len(kvs) == 0 {
		return c.publicVersions(ctx, name)
	}
	published, err := c.publishedNumbers(ctx, project, name)
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(kvs))
	for _, kv := range kvs {
		var v Version
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, err
		}
		v.Project, v.Public = project, published[v.Version]
		out = append(out, v)
	}
	return out, nil
}

// Summary is one template of List.
type Summary struct {
	Name        string    `json:"name"`
	Latest      int       `json:"latest"`
	Description string    `json:"description,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Public: version Latest is published. For another project's template
	// (listed with its latest published version) this project may use it
	// but not change it.
	Public bool `json:"public,omitempty"`
}

// List returns the project's templates, each with its latest version, then
// the public templates it does not shadow with its own names, by name.
func (c *Catalog) List(ctx context.Context, project string) ([]Summary, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	latest, err := c.latestVersions(ctx, project)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(latest))
	for _, v := range latest {
		out = append(out, Summary{Name: v.Name, Latest: v.Version, Description: v.Description, UpdatedAt: v.CreatedAt})
	}
	return c.addPublic(ctx, project, out)
}

// latestVersions returns the latest version of each of the project's
// templates, by name (from memory when it runs; the sources may be left
// out).
func (c *Catalog) latestVersions(ctx context.Context, project string) ([]Version, error) {
	if c.Memory.loaded() {
		var out []Version
		for _, s := range c.Memory.latestIn(projectPrefix(project) + "templates/") {
			out = append(out, *s.Version)
		}
		return out, nil
	}
	kvs, _, err := c.Store.List(ctx, projectPrefix(project)+"templates/")
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, kv := range kvs {
		if !strings.Contains(kv.Key, "/versions/") {
			continue
		}
		var v Version
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, err
		}
		// Keys sort by name, then version: the last seen of a name is its latest.
		if n := len(out); n > 0 && out[n-1].Name == v.Name {
			out[n-1] = v
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// Diff compares two versions of template name as project sees it.
func (c *Catalog) Diff(ctx context.Context, project, name, from, to string) ([]templates.Change, error) {
	r := c.For(project)
	a, err := r.Resolve(ctx, name, from)
	if err != nil {
		return nil, err
	}
	b, err := r.Resolve(ctx, name, to)
	if err != nil {
		return nil, err
	}
	return templates.Diff(a, b), nil
}
