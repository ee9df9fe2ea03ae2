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

	"github.com/cloudmux/cloudmux/registry"
)

// Store is the part of registry.Store the EC2 API keeps its records in
// (ID mappings, tags, terminated instances).
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
}

// EC2 ID prefixes.
const (
	prefixInstance = "i"
	prefixImage    = "ami"
	prefixVolume   = "vol"
	prefixKeypair  = "key"
)

var ec2IDRE = regexp.MustCompile(`^(i|ami|vol|vpc|subnet|sg)-([0-9a-f]{8}|[0-9a-f]{17})$`)

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
// candidate, SHA-256(prefix:uuid:1), and so on. Mappings never change once
// written, so they are cached with no invalidation.
type ids struct {
	store Store
	mu    sync.RWMutex
	toEC2 map[string]string // prefix/uuid -> ec2 id
	toID  map[string]string // ec2 id -> uuid
}

func newIDs(store Store) *ids {
	return &ids{store: store, toEC2: map[string]string{}, toID: map[string]string{}}
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

// maxCachedIDs bounds the cache; past it the cache starts over (crude, but
// entries reload from the store on demand).
const maxCachedIDs = 200_000

func (m *ids) remember(prefix, uuid, ec2ID string) {
	m.mu.Lock()
	if len(m.toID) >= maxCachedIDs {
		clear(m.toEC2)
		clear(m.toID)
	}
	m.toEC2[prefix+"/"+uuid], m.toID[ec2ID] = ec2ID, uuid
	m.mu.Unlock()
}

// ec2ID returns (creating when needed) the EC2 ID of a broker UUID.
func (m *ids) ec2ID(ctx context.Context, prefix, uuid string) (string, error) {
	m.mu.RLock()
	got, ok := m.toEC2[prefix+"/"+uuid]
	m.mu.RUnlock()
	if ok {
		return got, nil
	}
	if strings.Contains(uuid, "/") || uuid == "" {
		return "", fmt.Errorf("ec2: cannot map ID %q", uuid)
	}
	reverse := "ec2/uuids/" + prefix + "/" + uuid
	if kv, err := m.store.Get(ctx, reverse); err == nil {
		m.remember(prefix, uuid, string(kv.Value))
		return string(kv.Value), nil
	} else if !errors.Is(err, registry.ErrNotFound) {
		return "", err
	}
	for n := range maxIDCandidates {
		id := candidate(prefix, uuid, n)
		_, err := m.store.CAS(ctx, "ec2/ids/"+id, []byte(uuid), 0)
		if errors.Is(err, registry.ErrConflict) {
			kv, gerr := m.store.Get(ctx, "ec2/ids/"+id)
			if gerr != nil {
				return "", gerr
			}
			if string(kv.Value) != uuid {
				continue // taken by another resource: the next candidate
			}
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
		m.remember(prefix, uuid, id)
		return id, nil
	}
	return "", fmt.Errorf("ec2: no free EC2 ID for %s %s after %d candidates", prefix, uuid, maxIDCandidates)
}

// errUnknownID: no resource was ever mapped to an EC2 ID.
var errUnknownID = errors.New("ec2: unknown EC2 ID")

// resolve returns the broker UUID an EC2 ID was mapped to. A broker UUID
// (as the OpenStack APIs show it) is accepted too and returned as is.
func (m *ids) resolve(ctx context.Context, prefix, id string) (string, error) {
	if p, ok := parseID(id); !ok || p != prefix {
		if looksLikeUUID(id) {
			return id, nil
		}
		return "", errUnknownID
	}
	m.mu.RLock()
	got, ok := m.toID[id]
	m.mu.RUnlock()
	if ok {
		return got, nil
	}
	kv, err := m.store.Get(ctx, "ec2/ids/"+id)
	if errors.Is(err, registry.ErrNotFound) {
		return "", errUnknownID
	}
	if err != nil {
		return "", err
	}
	m.remember(prefix, string(kv.Value), id)
	return string(kv.Value), nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func looksLikeUUID(s string) bool { return uuidRE.MatchString(s) }

// keypairID is the stable ID of a user's key pair (not resolvable back:
// key pairs are addressed by name).
func keypairID(userID, name string) string {
	sum := sha256.Sum256([]byte(userID + "/" + name))
	return prefixKeypair + "-" + hex.EncodeToString(sum[:])[:17]
}
