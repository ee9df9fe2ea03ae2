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
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
}

var _ Store = registry.Store(nil)

// Catalog is the Focus catalog over a Store.
type Catalog struct {
	Store Store
	// Now is the clock (tests pin it); nil is time.Now.
	Now func() time.Time
}

var _ templates.Resolver = (*Catalog)(nil)

const prefix = "focus/"

// Version is one immutable template version.
type Version struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Hash is the SHA-256 of Source: pushing the same bytes again is a no-op.
	Hash        string           `json:"hash"`
	Format      templates.Format `json:"format"`
	Description string           `json:"description,omitempty"`
	// Uses are the versions this one extends or nests, "NAME@VERSION".
	Uses      []string  `json:"uses,omitempty"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
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

func (c *Catalog) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func versionKey(kind, name string, v int) string {
	return fmt.Sprintf("%s%s/%s/versions/%08d", prefix, kind, name, v)
}

func hashKey(kind, name, hash string) string {
	return fmt.Sprintf("%s%s/%s/hashes/%s", prefix, kind, name, hash)
}

// Push stores source as the next version of name, or, when a version of
// name already holds exactly these bytes, returns that version (created
// false). The source must parse and validate; the versions it extends or
// nests must exist, and are recorded as used by it.
func (c *Catalog) Push(ctx context.Context, name string, source []byte, by string) (v Version, created bool, err error) {
	if err := ValidName(name); err != nil {
		return Version{}, false, err
	}
	sum := sha256.Sum256(source)
	hash := hex.EncodeToString(sum[:])
	if existing, err := c.byHash(ctx, "templates", name, hash); err == nil {
		v, err := c.Get(ctx, name, existing)
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
		used, err := c.Get(ctx, un, uv)
		if err != nil {
			return Version{}, false, fmt.Errorf("%w: uses %s: %w", templates.ErrInvalid, u, err)
		}
		uses[i] = used.Ref()
	}
	v = Version{Name: name, Hash: hash, Format: t.Format, Description: t.Description, Uses: uses,
		Source: string(source), CreatedAt: c.now(), CreatedBy: by}
	if _, err := templates.Flatten(ctx, t, c); err != nil {
		return Version{}, false, err
	}
	n, err := c.create(ctx, "templates", name, hash, func(n int) any { v.Version = n; return v })
	if err != nil {
		var taken errHashTaken
		if errors.As(err, &taken) {
			v, err := c.Get(ctx, name, strconv.Itoa(int(taken)))
			return v, false, err
		}
		return Version{}, false, err
	}
	v.Version = n
	for _, u := range uses {
		if err := c.RecordUse(ctx, u, "template:"+v.Ref()); err != nil {
			return v, true, err
		}
	}
	return v, true, nil
}

type errHashTaken int

func (e errHashTaken) Error() string {
	return fmt.Sprintf("content already stored as version %d", int(e))
}

// create writes the next version of kind/name with a create-only CAS
// (retrying when another writer took the number), then claims its hash. A
// concurrent push of the same bytes that claimed the hash first wins: this
// one's version is removed again and errHashTaken names the winner.
func (c *Catalog) create(ctx context.Context, kind, name, hash string, record func(n int) any) (int, error) {
	for range 20 {
		latest, err := c.latest(ctx, kind, name)
		if err != nil {
			return 0, err
		}
		n := latest + 1
		b, err := json.Marshal(record(n))
		if err != nil {
			return 0, err
		}
		if _, err := c.Store.CAS(ctx, versionKey(kind, name, n), b, 0); errors.Is(err, registry.ErrConflict) {
			continue
		} else if err != nil {
			return 0, err
		}
		if _, err := c.Store.CAS(ctx, hashKey(kind, name, hash), []byte(strconv.Itoa(n)), 0); errors.Is(err, registry.ErrConflict) {
			_ = c.Store.Delete(ctx, versionKey(kind, name, n))
			other, err := c.byHash(ctx, kind, name, hash)
			if err != nil {
				return 0, err
			}
			n, _ := strconv.Atoi(other)
			return 0, errHashTaken(n)
		} else if err != nil {
			return 0, err
		}
		return n, nil
	}
	return 0, fmt.Errorf("focus: %s %s: too many concurrent pushes", kind, name)
}

func (c *Catalog) byHash(ctx context.Context, kind, name, hash string) (string, error) {
	kv, err := c.Store.Get(ctx, hashKey(kind, name, hash))
	if errors.Is(err, registry.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	return string(kv.Value), nil
}

func (c *Catalog) latest(ctx context.Context, kind, name string) (int, error) {
	kvs, _, err := c.Store.List(ctx, fmt.Sprintf("%s%s/%s/versions/", prefix, kind, name))
	if err != nil {
		return 0, err
	}
	if len(kvs) == 0 {
		return 0, nil
	}
	k := kvs[len(kvs)-1].Key
	return strconv.Atoi(k[strings.LastIndexByte(k, '/')+1:])
}

// Get returns version ("3", "latest" or "") of template name.
func (c *Catalog) Get(ctx context.Context, name, version string) (Version, error) {
	var v Version
	err := c.get(ctx, "templates", name, version, &v)
	return v, err
}

func (c *Catalog) get(ctx context.Context, kind, name, version string, into any) error {
	n, err := strconv.Atoi(version)
	if version == "" || version == "latest" {
		if n, err = c.latest(ctx, kind, name); err == nil && n == 0 {
			return fmt.Errorf("%w: %s %q", ErrNotFound, strings.TrimSuffix(kind, "s"), name)
		}
	}
	if err != nil || n < 1 {
		return fmt.Errorf("%w: version %q: want a number or latest", ErrInvalid, version)
	}
	kv, err := c.Store.Get(ctx, versionKey(kind, name, n))
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("%w: %s %s@%d", ErrNotFound, strings.TrimSuffix(kind, "s"), name, n)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(kv.Value, into)
}

// Resolve implements templates.Resolver.
func (c *Catalog) Resolve(ctx context.Context, name, version string) (*templates.Template, error) {
	v, err := c.Get(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return v.Template()
}

// Versions lists every version of name, oldest first.
func (c *Catalog) Versions(ctx context.Context, name string) ([]Version, error) {
	kvs, _, err := c.Store.List(ctx, fmt.Sprintf("%stemplates/%s/versions/", prefix, name))
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(kvs))
	for _, kv := range kvs {
		var v Version
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, err
		}
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
}

// List returns every template with its latest version, by name.
func (c *Catalog) List(ctx context.Context) ([]Summary, error) {
	kvs, _, err := c.Store.List(ctx, prefix+"templates/")
	if err != nil {
		return nil, err
	}
	var out []Summary
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
			out[n-1] = Summary{Name: v.Name, Latest: v.Version, Description: v.Description, UpdatedAt: v.CreatedAt}
			continue
		}
		out = append(out, Summary{Name: v.Name, Latest: v.Version, Description: v.Description, UpdatedAt: v.CreatedAt})
	}
	return out, nil
}

// Diff compares two versions of name.
func (c *Catalog) Diff(ctx context.Context, name, from, to string) ([]templates.Change, error) {
	a, err := c.Resolve(ctx, name, from)
	if err != nil {
		return nil, err
	}
	b, err := c.Resolve(ctx, name, to)
	if err != nil {
		return nil, err
	}
	return templates.Diff(a, b), nil
}
