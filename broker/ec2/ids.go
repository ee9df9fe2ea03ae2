package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Store is the part of registry.Store the EC2 API keeps its records in
// (ID mappings, tags, terminated instances) and follows (the ID mappings,
// through a watch).
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, index uint64) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

// EC2 ID prefixes.
const (
	prefixInstance = "i"
	prefixImage    = "ami"
	prefixVolume   = "vol"
	prefixKeypair  = "key"
)

var ec2IDRE = regexp.MustCompile(`^(i|ami|vol|vpc|subnet|sg|eipalloc|eipassoc)-([0-9a-f]{8}|[0-9a-f]{17})$`)

// parseID splits an EC2 ID into its prefix; ok is false for anything else.
func parseID(id string) (prefix string, ok bool) {
	m := ec2IDRE.FindStringSubmatch(id)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ids maps broker UUIDs to EC2 IDs and back. An EC2 ID is its prefix and
// the first 17 hex digits of SHA-256(prefix:uuid), so every replica derives
// the same one; the pair is recorded (ec2/ids/<ec2 id> -> uuid, and
// ec2/uuids/<prefix>/<uuid> -> ec2 id) with create-only writes, so a
// collision is seen, not silently shared: the later UUID takes the next
// candidate, SHA-256(prefix:uuid:1), and so on.
//
// Only a call that changes something records a pair (assign): the action
// that creates the resource, or the first one that acts on a resource
// made elsewhere (Nova, Glance) by its EC2 ID. Describe calls only read
// (shown): a resource with no pair yet shows the candidate no other
// resource holds, which is the ID assign will record. The pairs are held
// in memory, fed by a watch of ec2/ids/ (Run), so neither reads the
// Store; resolving an ID memory lacks reads one key (another replica's
// fresh pair). The collector (IDCollector) removes the pairs of resources
// gone for longer than its retention.
type ids struct {
	store  Store
	mirror *registry.Mirror[string]
	mu     sync.RWMutex
	toEC2  map[string]string // prefix/uuid -> ec2 id
	toID   map[string]string // ec2 id -> uuid
}

const (
	idsPrefix   = "ec2/ids/"
	uuidsPrefix = "ec2/uuids/"
)

func newIDs(store Store, log logrus.FieldLogger) *ids {
	m := &ids{store: store, toEC2: map[string]string{}, toID: map[string]string{}}
	m.mirror = registry.NewMirror(store, idsPrefix, func(kv registry.KV) (string, error) {
		if _, ok := parseID(strings.TrimPrefix(kv.Key, idsPrefix)); !ok || len(kv.Value) == 0 {
			return "", fmt.Errorf("not an EC2 ID mapping")
		}
		return string(kv.Value), nil
	}, registry.Sink[string](m), log)
	return m
}

// Set and Unset feed the mirror's pairs into the maps.
func (m *ids) Set(key, uuid string) {
	id := strings.TrimPrefix(key, idsPrefix)
	prefix, _ := parseID(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.toID[id] = uuid
	// A UUID mapped twice (two replicas raced past a collision) keeps the
	// pair its reverse record names; until that is known, the first seen.
	if _, ok := m.toEC2[prefix+"/"+uuid]; !ok {
		m.toEC2[prefix+"/"+uuid] = id
	}
}

func (m *ids) Unset(key string) {
	id := strings.TrimPrefix(key, idsPrefix)
	prefix, _ := parseID(id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if uuid, ok := m.toID[id]; ok {
		if m.toEC2[prefix+"/"+uuid] == id {
			delete(m.toEC2, prefix+"/"+uuid)
		}
		delete(m.toID, id)
	}
}

const maxIDCandidates = 16

func candidate(prefix, uuid string, n int) string {
	in := prefix + ":" + uuid
	if n > 0 {
		in += fmt.Sprintf(":%d", n)
	}
	sum := sha256.Sum256([]byte(in))
	return prefix + "-" + hex.EncodeToString(sum[:])[:17]
}

func (m *ids) cached(prefix, uuid string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	got, ok := m.toEC2[prefix+"/"+uuid]
	return got, ok
}

func (m *ids) holder(id string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	got, ok := m.toID[id]
	return got, ok
}

func (m *ids) remember(prefix, uuid, ec2ID string, idx uint64) {
	m.mirror.Wrote(idsPrefix+ec2ID, uuid, idx)
	m.mu.Lock()
	m.toEC2[prefix+"/"+uuid] = ec2ID // the reverse record's word is final
	m.mu.Unlock()
}

// shown returns the EC2 ID a resource shows, writing nothing: its pair,
// or, for a resource with none yet, the first candidate no other resource
// holds. Before the mirror has loaded it reads the Store instead.
func (m *ids) shown(ctx context.Context, prefix, uuid string) (string, error) {
	if got, ok := m.cached(prefix, uuid); ok {
		return got, nil
	}
	if strings.Contains(uuid, "/") || uuid == "" {
		return "", fmt.Errorf("ec2: cannot map ID %q", uuid)
	}
	loaded := m.mirror.Loaded()
	if !loaded {
		if kv, err := m.store.Get(ctx, uuidsPrefix+prefix+"/"+uuid); err == nil {
			return string(kv.Value), nil
		} else if !errors.Is(err, registry.ErrNotFound) {
			return "", err
		}
	}
	for n := range maxIDCandidates {
		id := candidate(prefix, uuid, n)
		holder, taken := m.holder(id)
		if !loaded {
			kv, err := m.store.Get(ctx, idsPrefix+id)
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				return "", err
			}
			holder, taken = string(kv.Value), err == nil
		}
		if !taken || holder == uuid {
			return id, nil
		}
	}
	return "", fmt.Errorf("ec2: no free EC2 ID for %s %s after %d candidates", prefix, uuid, maxIDCandidates)
}

// assign returns the EC2 ID of a broker UUID, recording the pair when it
// is not yet: for calls that create or change the resource.
func (m *ids) assign(ctx context.Context, prefix, uuid string) (string, error) {
	if got, ok := m.cached(prefix, uuid); ok {
		return got, nil
	}
	if strings.Contains(uuid, "/") || uuid == "" {
		return "", fmt.Errorf("ec2: cannot map ID %q", uuid)
	}
	reverse := uuidsPrefix + prefix + "/" + uuid
	if kv, err := m.store.Get(ctx, reverse); err == nil {
		if fwd, err := m.store.Get(ctx, idsPrefix+string(kv.Value)); err == nil {
			m.remember(prefix, uuid, string(kv.Value), fwd.ModifyIndex)
		}
		return string(kv.Value), nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return "", err
	}
	for n := range maxIDCandidates {
		id := candidate(prefix, uuid, n)
		idx, err := m.store.CAS(ctx, idsPrefix+id, []byte(uuid), 0)
		if errors.Is(err, registry.ErrConflict) {
			kv, gerr := m.store.Get(ctx, idsPrefix+id)
			if gerr != nil {
				return "", gerr
			}
			if string(kv.Value) != uuid {
				continue // taken by another resource: the next candidate
			}
			idx = kv.ModifyIndex
		} else if err != nil {
			return "", err
		}
		// Another replica may have mapped the UUID meanwhile, to an earlier
		// candidate: the reverse record decides.
		if _, err := m.store.CAS(ctx, reverse, []byte(id), 0); errors.Is(err, registry.ErrConflict) {
			kv, gerr := m.store.Get(ctx, reverse)
			if gerr != nil {
				return "", gerr
			}
			id = string(kv.Value)
		} else if err != nil {
			return "", err
		}
		m.remember(prefix, uuid, id, idx)
		return id, nil
	}
	return "", fmt.Errorf("ec2: no free EC2 ID for %s %s after %d candidates", prefix, uuid, maxIDCandidates)
}

// errUnknownID: no resource is mapped to an EC2 ID.
var errUnknownID = errors.New("ec2: unknown EC2 ID")

// resolve returns the broker UUID an EC2 ID is mapped to. A broker UUID
// (as the OpenStack APIs show it) is accepted too and returned as is. An
// ID with no pair is errUnknownID: the caller may still find it among the
// project's resources (API.resolveID).
func (m *ids) resolve(ctx context.Context, prefix, id string) (string, error) {
	if p, ok := parseID(id); !ok || p != prefix {
		if looksLikeUUID(id) {
			return id, nil
		}
		return "", errUnknownID
	}
	if got, ok := m.holder(id); ok {
		return got, nil
	}
	got, err := m.mirror.Fetch(ctx, idsPrefix+id)
	if errors.Is(err, registry.ErrNotFound) {
		return "", errUnknownID
	}
	return got, err
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func looksLikeUUID(s string) bool { return uuidRE.MatchString(s) }

// keypairID is the stable ID of a user's key pair (not resolvable back:
// key pairs are addressed by name).
func keypairID(userID, name string) string {
	sum := sha256.Sum256([]byte(userID + "/" + name))
	return prefixKeypair + "-" + hex.EncodeToString(sum[:])[:17]
}
