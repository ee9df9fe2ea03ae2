package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Resource names a quota dimension, under the name Nova or Cinder gives it
// (Neutron's singular names are mapped at its API).
type Resource string

// The dimensions the ledger enforces.
const (
	Instances          Resource = "instances"
	Cores              Resource = "cores"
	RAM                Resource = "ram" // MiB
	KeyPairs           Resource = "key_pairs"
	Volumes            Resource = "volumes"
	Gigabytes          Resource = "gigabytes" // volumes and snapshots, never server root disks
	Snapshots          Resource = "snapshots"
	Networks           Resource = "networks"
	Subnets            Resource = "subnets"
	Ports              Resource = "ports"
	SecurityGroups     Resource = "security_groups"
	SecurityGroupRules Resource = "security_group_rules"
	// Routers and FloatingIPs are Neutron's router and floatingip.
	Routers     Resource = "routers"
	FloatingIPs Resource = "floatingips"
	// ServerGroups counts a project's server groups; ServerGroupMembers
	// is a limit only: the servers one group may hold (Nova's per-group
	// server_group_members), checked against the group, never counted.
	ServerGroups       Resource = "server_groups"
	ServerGroupMembers Resource = "server_group_members"
)

// Unlimited is the limit that never refuses.
const Unlimited = -1

// MaxLimit is the largest limit accepted (Nova's database MAX_INT).
const MaxLimit = math.MaxInt32

// Amounts are quantities per dimension: limits, usage or a request.
type Amounts map[Resource]int

// Clone returns a copy (nil stays nil).
func (a Amounts) Clone() Amounts { return maps.Clone(a) }

// add adds b into a, which must not be nil.
func (a Amounts) add(b Amounts, sign int) {
	for k, v := range b {
		a[k] += sign * v
		if a[k] <= 0 {
			delete(a, k) // a free of more than was counted floors at 0
		}
	}
}

// Defaults are the upstream services' default quotas: Nova's (instances
// 10, cores 20, ram 51200 MiB, key_pairs 100), Cinder's (volumes 10,
// gigabytes 1000, snapshots 10) and Neutron's (network 100, subnet 100,
// port 500, security_group 10, security_group_rule 100, router 10,
// floatingip 50), with Nova's
// server_groups 10 and server_group_members 10.
var Defaults = Amounts{
	Instances: 10, Cores: 20, RAM: 51200, KeyPairs: 100, ServerGroups: 10, ServerGroupMembers: 10,
	Volumes: 10, Gigabytes: 1000, Snapshots: 10,
	Networks: 100, Subnets: 100, Ports: 500, SecurityGroups: 10, SecurityGroupRules: 100,
	Routers: 10, FloatingIPs: 50,
}

// Known reports whether r is a dimension the ledger enforces.
func Known(r Resource) bool { _, ok := Defaults[r]; return ok }

// Validate reports every unknown dimension and every limit out of range
// (-1 to MaxLimit), naming it.
func (a Amounts) Validate() error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(a)) {
		switch v := a[k]; {
		case !Known(k):
			errs = append(errs, fmt.Errorf("%w: unknown quota resource %s", ErrInvalid, k))
		case v < Unlimited || v > MaxLimit:
			errs = append(errs, fmt.Errorf("%w: %s must be between %d (unlimited) and %d, not %d", ErrInvalid, k, Unlimited, MaxLimit, v))
		}
	}
	return errors.Join(errs...)
}

// Store is the part of registry.Store the ledger uses.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
}

var _ Store = registry.Store(nil)

// Limits keeps per-project limits at quotas/<project>: only what a cloud
// admin set, so a limit never set follows the project default, and the
// defaults an admin changed at quota-defaults/<resource> (Keystone's
// registered limits; a default never changed is the built-in one). Nova's
// and Cinder's os-quota-sets, Neutron's quotas and Keystone's unified
// limits all read and write these same records.
//
// Made by NewLimits and Run, it serves reads from memory fed by watches
// of both prefixes (the ledger reads limits on every reservation); its
// own writes are seen at once, another replica's when the watch delivers
// them. A bare Limits{Store} reads the Store each time and knows only the
// built-in defaults.
type Limits struct {
	Store Store
	// Default is the built-in limit of a dimension whose default no admin
	// changed; nil is Defaults.
	Default Amounts

	mem *limitsMemory
}

// projectLimits is a quotas/<project> record: the limits set and the
// descriptions given to some of them (Keystone's limit description).
// Records written before descriptions existed are a bare Amounts object.
type projectLimits struct {
	Limits       Amounts             `json:"limits"`
	Descriptions map[Resource]string `json:"descriptions,omitempty"`
}

func decodeProjectLimits(raw []byte) (projectLimits, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return projectLimits{}, err
	}
	var rec projectLimits
	if _, ok := probe["limits"]; ok {
		if err := json.Unmarshal(raw, &rec); err != nil {
			return projectLimits{}, err
		}
	} else if err := json.Unmarshal(raw, &rec.Limits); err != nil { // the bare Amounts of older brokers
		return projectLimits{}, err
	}
	if rec.Limits == nil {
		rec.Limits = Amounts{}
	}
	return rec, nil
}

// builtin returns the built-in defaults.
func (l *Limits) builtin() Amounts {
	if l.Default != nil {
		return l.Default.Clone()
	}
	return Defaults.Clone()
}

// Defaults returns the limits of a project nobody set any for: the
// built-in defaults overlaid with those an admin changed.
func (l *Limits) Defaults() Amounts {
	out := l.builtin()
	if l.mem != nil {
		for r, d := range l.mem.defaults() {
			if _, ok := out[r]; ok {
				out[r] = d.Limit
			}
		}
	}
	return out
}

func limitsKey(project string) (string, error) {
	return scopedKey("quotas/", project)
}

func scopedKey(prefix, scope string) (string, error) {
	if scope == "" || strings.Contains(scope, "/") {
		return "", fmt.Errorf("%w: project %q", ErrInvalid, scope)
	}
	key := prefix + scope
	if err := registry.ValidateKey(key); err != nil {
		return "", fmt.Errorf("%w: project %q", ErrInvalid, scope)
	}
	return key, nil
}

// read returns what is stored for a project and the record's index (0
// when there is none), from the Store: writers compare-and-swap on it.
func (l *Limits) read(ctx context.Context, key string) (projectLimits, uint64, error) {
	kv, err := l.Store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return projectLimits{Limits: Amounts{}}, 0, nil
	}
	if err != nil {
		return projectLimits{}, 0, fmt.Errorf("reading %s: %w", key, err)
	}
	rec, err := decodeProjectLimits(kv.Value)
	if err != nil {
		return projectLimits{}, 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	return rec, kv.ModifyIndex, nil
}

// set returns what an admin set for project: from memory when it is
// loaded, else from the Store.
func (l *Limits) set(ctx context.Context, project string) (projectLimits, error) {
	key, err := limitsKey(project)
	if err != nil {
		return projectLimits{}, err
	}
	if l.mem != nil && l.mem.projects.Loaded() {
		return l.mem.project(key), nil
	}
	rec, _, err := l.read(ctx, key)
	return rec, err
}

// Get returns project's limits: what an admin set over the defaults.
func (l *Limits) Get(ctx context.Context, project string) (Amounts, error) {
	rec, err := l.set(ctx, project)
	if err != nil {
		return nil, err
	}
	return l.over(rec), nil
}

// over is the defaults with rec's limits over them.
func (l *Limits) over(rec projectLimits) Amounts {
	out := l.Defaults()
	for k, v := range rec.Limits {
		if Known(k) { // a dimension a later version dropped is ignored
			out[k] = v
		}
	}
	return out
}

// Enforcing returns the limits as a ledger must enforce them: a project's
// own limits read from the Store at each reservation (one key), never
// from memory. Another broker's memory learns a limit an admin just set
// only when its watch delivers it, and a create in between would be
// checked against the old limit: a quota set on one broker and exceeded
// at once through another (TestQuotaAcrossTwoBrokersOnConsul, 8 servers
// under a quota of 3). The defaults still come from memory: a changed
// registered limit reaches a broker with its watch.
func (l *Limits) Enforcing() LimitSource { return enforcing{l} }

type enforcing struct{ l *Limits }

func (e enforcing) Get(ctx context.Context, project string) (Amounts, error) {
	key, err := limitsKey(project)
	if err != nil {
		return nil, err
	}
	rec, _, err := e.l.read(ctx, key)
	if err != nil {
		return nil, err
	}
	return e.l.over(rec), nil
}

// change applies edit to project's record with a compare-and-swap,
// retried over another admin's concurrent write, and tells the memory.
// edit returning errSkip writes nothing.
func (l *Limits) change(ctx context.Context, project string, edit func(rec *projectLimits) error) error {
	key, err := limitsKey(project)
	if err != nil {
		return err
	}
	for {
		rec, index, err := l.read(ctx, key)
		if err != nil {
			return err
		}
		if err := edit(&rec); errors.Is(err, errSkip) {
			return nil
		} else if err != nil {
			return err
		}
		if len(rec.Descriptions) == 0 {
			rec.Descriptions = nil
		}
		// Written, even when empty, never deleted: a compare-and-swap
		// keeps another admin's concurrent write.
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		idx, err := l.Store.CAS(ctx, key, b, index)
		if errors.Is(err, registry.ErrConflict) && ctx.Err() == nil {
			continue // another admin wrote first: edit theirs
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", key, err)
		}
		if l.mem != nil {
			l.mem.projects.Wrote(key, rec, idx)
		}
		return nil
	}
}

// Set changes the named limits of project (the others keep theirs) and
// returns the whole set. Concurrent admins changing different limits both
// land (compare-and-swap, retried).
func (l *Limits) Set(ctx context.Context, project string, limits Amounts) (Amounts, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	err := l.change(ctx, project, func(rec *projectLimits) error {
		maps.Copy(rec.Limits, limits)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l.Get(ctx, project)
}

// Reset forgets project's limits: the defaults apply again.
func (l *Limits) Reset(ctx context.Context, project string) error {
	key, err := limitsKey(project)
	if err != nil {
		return err
	}
	if err := l.Store.Delete(ctx, key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	if l.mem != nil {
		l.mem.projects.Deleted(key, 0)
	}
	return nil
}

// Overridden lists the projects an admin set limits for (Neutron's GET
// /quotas): from memory, or an admin's occasional read of the quotas/
// prefix, never on a project's request path.
func (l *Limits) Overridden(ctx context.Context) ([]string, error) {
	if l.mem != nil && l.mem.projects.Loaded() {
		return l.mem.projectIDs(), nil
	}
	lister, ok := l.Store.(interface {
		List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	})
	if !ok {
		return nil, fmt.Errorf("%w: this store cannot list", ErrInvalid)
	}
	kvs, _, err := lister.List(ctx, "quotas/")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, strings.TrimPrefix(kv.Key, "quotas/"))
	}
	return out, nil
}

// Below returns the limits set in limits (unlimited ones aside) under
// what the project already uses and has reserved, by resource: what
// os-quota-sets refuses to set without force. Each Over's Limit is the
// limit asked for, its Used the usage and reservations.
func Below(limits, used, reserved Amounts) []Over {
	var out []Over
	for _, dim := range slices.Sorted(maps.Keys(limits)) {
		if l, u := limits[dim], used[dim]+reserved[dim]; l >= 0 && l < u {
			out = append(out, Over{Resource: dim, Used: u, Limit: l})
		}
	}
	return out
}
