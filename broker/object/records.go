package object

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Store prefixes of the records the service keeps. A container is
// containersRoot + project + "/" + base64url(name) (a Swift name may hold
// any byte but '/' and NUL, which a Consul key should not); an account's
// own record is accountsRoot + project + "/account".
const (
	containersRoot = "swift/containers/"
	accountsRoot   = "swift/accounts/"
)

func containerKey(project, name string) string {
	return containersRoot + project + "/" + base64.RawURLEncoding.EncodeToString([]byte(name))
}

func accountKey(project string) string { return accountsRoot + project + "/account" }

// Container is the broker's record of a container: everything a tenant
// sees about it but its objects, which live in a bucket on one peer that
// the broker named (PeerContainer, unique, never the tenant's name).
type Container struct {
	Project string `json:"project"`
	Name    string `json:"name"`
	PeerID  string `json:"peer_id"`
	// PeerContainer is the peer-side container the objects are in.
	PeerContainer string `json:"peer_container"`
	// Meta is the user metadata (X-Container-Meta-*), keys in lower case
	// without the prefix; the container quotas (quota-bytes,
	// quota-count) are metadata, as in Swift.
	Meta map[string]string `json:"meta,omitempty"`
	// ReadACL and WriteACL are X-Container-Read and X-Container-Write
	// (acl.go).
	ReadACL  string `json:"read_acl,omitempty"`
	WriteACL string `json:"write_acl,omitempty"`
	// VersionsLocation (X-Versions-Location, stack mode) or
	// HistoryLocation (X-History-Location, history mode), at most one
	// set, names the container of the same account that keeps replaced
	// objects (versioning.go).
	VersionsLocation string    `json:"versions_location,omitempty"`
	HistoryLocation  string    `json:"history_location,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	// UpdatedAt is the last PUT or POST on the container itself.
	UpdatedAt time.Time `json:"updated_at"`
}

// Account is the broker's record of an account's own metadata
// (X-Account-Meta-*, including the admin-set quota-bytes and the
// temp-url-key a later tempurl step reads). An account without one has
// none.
type Account struct {
	Project   string            `json:"project"`
	Meta      map[string]string `json:"meta,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// ContainersMemory holds every project's container records in memory on
// each replica, by project, fed by a Store watch: Run it beside the
// Service. A container another replica just made is read from the Store
// (its one key) until the watch delivers it.
type ContainersMemory = registry.Records[Container]

// AccountsMemory holds the account records the same way.
type AccountsMemory = registry.Records[Account]

// NewContainersMemory returns the containers kept in store; Run keeps
// them in memory.
func NewContainersMemory(store registry.MirrorStore, log logrus.FieldLogger) *ContainersMemory {
	return registry.NewRecords(store, containersRoot, registry.DecodeJSON[Container], log)
}

// NewAccountsMemory returns the accounts kept in store; Run keeps them in
// memory.
func NewAccountsMemory(store registry.MirrorStore, log logrus.FieldLogger) *AccountsMemory {
	return registry.NewRecords(store, accountsRoot, registry.DecodeJSON[Account], log)
}

func (s *Service) containerRecords() *ContainersMemory {
	if s.Containers != nil {
		return s.Containers
	}
	return NewContainersMemory(s.Store, s.Log)
}

func (s *Service) accountRecords() *AccountsMemory {
	if s.Accounts != nil {
		return s.Accounts
	}
	return NewAccountsMemory(s.Store, s.Log)
}

// container returns a container's record from memory (a miss is read
// from the Store: another replica may just have made it).
func (s *Service) container(ctx context.Context, project, name string) (Container, error) {
	ct, err := s.containerRecords().Get(ctx, containerKey(project, name), true)
	if errors.Is(err, registry.ErrNotFound) {
		return Container{}, fmt.Errorf("container %q: %w", name, ErrNotFound)
	}
	return ct, err
}

// projectContainers returns the project's containers by name, from
// memory.
func (s *Service) projectContainers(ctx context.Context, project string) ([]Container, error) {
	cs, err := s.containerRecords().List(ctx, project)
	if err != nil {
		return nil, err
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	return cs, nil
}

// loadContainer reads a container's record and its version from the
// Store, to change it.
func (s *Service) loadContainer(ctx context.Context, project, name string) (Container, uint64, error) {
	kv, err := s.Store.Get(ctx, containerKey(project, name))
	if errors.Is(err, registry.ErrNotFound) {
		return Container{}, 0, fmt.Errorf("container %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Container{}, 0, err
	}
	ct, err := registry.DecodeJSON[Container](kv)
	return ct, kv.ModifyIndex, err
}

// putContainer writes a container's record at version at (0: a new one);
// a lost race is registry.ErrConflict.
func (s *Service) putContainer(ctx context.Context, ct Container, at uint64) error {
	raw, err := json.Marshal(ct)
	if err != nil {
		return err
	}
	key := containerKey(ct.Project, ct.Name)
	idx, err := s.Store.CAS(ctx, key, raw, at)
	if err != nil {
		return err
	}
	s.containerRecords().Wrote(key, ct, idx)
	return nil
}

func (s *Service) deleteContainerRecord(ctx context.Context, project, name string) error {
	key := containerKey(project, name)
	if err := s.Store.Delete(ctx, key); err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	s.containerRecords().Deleted(key)
	return nil
}

// account returns an account's record from memory (none: an empty one).
func (s *Service) account(ctx context.Context, project string) (Account, error) {
	a, err := s.accountRecords().Get(ctx, accountKey(project), false)
	if errors.Is(err, registry.ErrNotFound) {
		return Account{Project: project}, nil
	}
	return a, err
}

// changeAccount applies change to the account's record with CAS, retried
// on a lost race.
func (s *Service) changeAccount(ctx context.Context, project string, change func(*Account) error) (Account, error) {
	for {
		a, at := Account{Project: project}, uint64(0)
		kv, err := s.Store.Get(ctx, accountKey(project))
		switch {
		case err == nil:
			if a, err = registry.DecodeJSON[Account](kv); err != nil {
				return Account{}, err
			}
			at = kv.ModifyIndex
		case !errors.Is(err, registry.ErrNotFound):
			return Account{}, err
		}
		a.Meta = maps.Clone(a.Meta)
		if err := change(&a); err != nil {
			return Account{}, err
		}
		raw, err := json.Marshal(a)
		if err != nil {
			return Account{}, err
		}
		idx, err := s.Store.CAS(ctx, accountKey(project), raw, at)
		if errors.Is(err, registry.ErrConflict) {
			continue
		}
		if err != nil {
			return Account{}, err
		}
		s.accountRecords().Wrote(accountKey(project), a, idx)
		return a, nil
	}
}
