package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Store is the part of registry.Store policies and decisions live in.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

var _ Store = registry.Store(nil)

// Keys of the policy records.
const (
	versionsPrefix = "policies/versions/"
	activeKey      = "policies/active"
	// historyCap bounds the rollback history kept in the active record.
	historyCap = 50
)

// Version is one immutable upload.
type Version struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Bundle
}

// Summary describes a version without its files.
type Summary struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Modules   []string  `json:"modules"`
	Tests     []string  `json:"tests"`
	Active    bool      `json:"active"`
}

func (v Version) summary(active string) Summary {
	s := Summary{ID: v.ID, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy, Comment: v.Comment, Active: v.ID == active,
		Modules: []string{}, Tests: []string{}}
	for name := range v.Modules {
		s.Modules = append(s.Modules, name)
	}
	for name := range v.Tests {
		s.Tests = append(s.Tests, name)
	}
	slices.Sort(s.Modules)
	slices.Sort(s.Tests)
	return s
}

// Active says which version decides, who chose it, and the versions that
// were active before it (oldest first), for rollback.
type Active struct {
	Version     string    `json:"version"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	ActivatedBy string    `json:"activated_by,omitempty"`
	History     []string  `json:"history,omitempty"`
}

// Versions is the versioned policy store: uploads become immutable
// versions named by their content hash, one of which is active.
type Versions struct {
	store Store
	now   func() time.Time
}

// NewVersions returns the policy store over s.
func NewVersions(s Store) *Versions {
	return &Versions{store: s, now: func() time.Time { return time.Now().UTC() }}
}

// Upload validates b (it must compile and its tests must pass) and stores
// it as a version. Uploading content that is already stored returns that
// version with created false. An invalid bundle is an error listing every
// problem with its position; nothing is stored then, and the active
// version is never touched by an upload.
func (vs *Versions) Upload(ctx context.Context, b Bundle, by, comment string) (v Version, created bool, err error) {
	if _, err := compile(ctx, "upload", b); err != nil {
		return Version{}, false, err
	}
	if len(b.Tests) > 0 {
		results, err := RunTests(ctx, b)
		if err != nil {
			return Version{}, false, err
		}
		if err := failedTests(results); err != nil {
			return Version{}, false, err
		}
	}
	v = Version{ID: b.Hash(), CreatedAt: vs.now(), CreatedBy: by, Comment: comment, Bundle: b}
	raw, err := json.Marshal(v)
	if err != nil {
		return Version{}, false, err
	}
	if _, err := vs.store.CAS(ctx, versionsPrefix+v.ID, raw, 0); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			old, err := vs.Get(ctx, v.ID)
			return old, false, err
		}
		return Version{}, false, fmt.Errorf("store version %s: %w", v.ID, err)
	}
	return v, true, nil
}

// Get returns a version; "stock" is the built-in policy.
func (vs *Versions) Get(ctx context.Context, id string) (Version, error) {
	if id == StockVersion {
		return Version{ID: StockVersion, Comment: "the built-in policy", Bundle: Stock()}, nil
	}
	if !validID(id) {
		return Version{}, fmt.Errorf("%w: version %q", ErrNotFound, id)
	}
	kv, err := vs.store.Get(ctx, versionsPrefix+id)
	if errors.Is(err, registry.ErrNotFound) {
		return Version{}, fmt.Errorf("%w: version %s", ErrNotFound, id)
	}
	if err != nil {
		return Version{}, err
	}
	var v Version
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return Version{}, fmt.Errorf("version %s: %w", id, err)
	}
	return v, nil
}

// validID accepts what Hash produces, so a path segment never becomes a
// key outside versions.
func validID(id string) bool {
	if len(id) != 16 {
		return false
	}
	return strings.Trim(id, "0123456789abcdef") == ""
}

// List returns every version, newest first, stock last.
func (vs *Versions) List(ctx context.Context) ([]Summary, error) {
	a, err := vs.Active(ctx)
	if err != nil {
		return nil, err
	}
	kvs, _, err := vs.store.List(ctx, versionsPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(kvs)+1)
	for _, kv := range kvs {
		var v Version
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			continue // not ours to fix here; Get reports it
		}
		out = append(out, v.summary(a.Version))
	}
	slices.SortStableFunc(out, func(x, y Summary) int { return y.CreatedAt.Compare(x.CreatedAt) })
	stock, _ := vs.Get(ctx, StockVersion)
	return append(out, stock.summary(a.Version)), nil
}

// Active returns the active record; with none stored, the stock policy.
func (vs *Versions) Active(ctx context.Context) (Active, error) {
	a, _, err := vs.active(ctx)
	return a, err
}

func (vs *Versions) active(ctx context.Context) (Active, uint64, error) {
	kv, err := vs.store.Get(ctx, activeKey)
	if errors.Is(err, registry.ErrNotFound) {
		return Active{Version: StockVersion}, 0, nil
	}
	if err != nil {
		return Active{}, 0, err
	}
	return decodeActive(kv.Value), kv.ModifyIndex, nil
}

func decodeActive(raw []byte) Active {
	var a Active
	if json.Unmarshal(raw, &a) != nil || a.Version == "" {
		a.Version = StockVersion
	}
	return a
}

// Activate makes id the active version; the one it replaces goes on the
// rollback history.
func (vs *Versions) Activate(ctx context.Context, id, by string) (Active, error) {
	if _, err := vs.Get(ctx, id); err != nil {
		return Active{}, err
	}
	return vs.update(ctx, func(a Active) (Active, error) {
		if a.Version == id {
			return a, nil
		}
		hist := append(slices.Clone(a.History), a.Version)
		if len(hist) > historyCap {
			hist = hist[len(hist)-historyCap:]
		}
		return Active{Version: id, ActivatedAt: vs.now(), ActivatedBy: by, History: hist}, nil
	})
}

// Rollback re-activates the version that was active before the current
// one.
func (vs *Versions) Rollback(ctx context.Context, by string) (Active, error) {
	return vs.update(ctx, func(a Active) (Active, error) {
		if len(a.History) == 0 {
			return Active{}, fmt.Errorf("%w (active: %s)", ErrNoRollback, a.Version)
		}
		n := len(a.History) - 1
		return Active{Version: a.History[n], ActivatedAt: vs.now(), ActivatedBy: by, History: slices.Clone(a.History[:n])}, nil
	})
}

// update applies change to the active record with compare-and-swap,
// retrying when another replica wrote in between.
func (vs *Versions) update(ctx context.Context, change func(Active) (Active, error)) (Active, error) {
	for {
		cur, idx, err := vs.active(ctx)
		if err != nil {
			return Active{}, err
		}
		next, err := change(cur)
		if err != nil {
			return Active{}, err
		}
		if next.Version == cur.Version && idx != 0 && slices.Equal(next.History, cur.History) {
			return cur, nil
		}
		raw, err := json.Marshal(next)
		if err != nil {
			return Active{}, err
		}
		if _, err := vs.store.CAS(ctx, activeKey, raw, idx); errors.Is(err, registry.ErrConflict) {
			continue
		} else if err != nil {
			return Active{}, err
		}
		return next, nil
	}
}

// watchActive blocks until the active record changes after index (at once
// when index is 0) and returns it with the index to watch next.
func (vs *Versions) watchActive(ctx context.Context, index uint64) (Active, uint64, error) {
	var kvs []registry.KV
	var next uint64
	var err error
	if index == 0 {
		kvs, next, err = vs.store.List(ctx, activeKey)
	} else {
		kvs, next, err = vs.store.Watch(ctx, activeKey, index)
	}
	if err != nil {
		return Active{}, index, err
	}
	for _, kv := range kvs {
		if kv.Key == activeKey {
			return decodeActive(kv.Value), next, nil
		}
	}
	return Active{Version: StockVersion}, next, nil
}
