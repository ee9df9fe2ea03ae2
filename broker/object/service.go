package object

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Kind is the placement request kind of a new container.
const Kind = "container"

// MaxObjectSize is the largest object one PUT stores: Swift's default
// max_file_size (5 GiB + 2 bytes).
const MaxObjectSize = 5<<30 + 2

// Quota metadata keys (Swift's account_quotas and container_quotas
// middlewares read the same metadata).
const (
	metaQuotaBytes = "quota-bytes"
	metaQuotaCount = "quota-count"
)

// Pool is the part of peers.Pool the service uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Store is the part of registry.Store the service keeps its records in.
type Store interface {
	registry.MirrorStore
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
}

// Service is the object storage service layer, behind the Swift API: the
// only code that calls a peer's peers.Objects. See doc.go for the rules
// it keeps.
//
// Its zero value is not usable: set Pool, Placer, Store and Log; set
// Containers and Accounts (and Run them) to serve reads from memory.
type Service struct {
	Pool   Pool
	Placer policy.Placer
	Store  Store
	// Containers and Accounts, when set (and Run), serve the records from
	// memory; without them every read goes to the Store.
	Containers *ContainersMemory
	Accounts   *AccountsMemory
	Log        logrus.FieldLogger
	// PeerTimeout bounds each call to a peer but object data transfers
	// and each peer's part of an account's usage; default 10s.
	PeerTimeout time.Duration
	// UsageTTL is how long a container's count and bytes, once read from
	// its peer, serve account listings and quota checks; default 2s.
	UsageTTL time.Duration
	// BrokerID is the installation's: the containers it makes on peers
	// are named after it (PeerPrefix), so the Reaper never takes another
	// installation's containers on a peer both use.
	BrokerID string

	usage usageCache
}

func (s *Service) timeout() time.Duration {
	if s.PeerTimeout > 0 {
		return s.PeerTimeout
	}
	return 10 * time.Second
}

// Caller is who asks: the project its token is scoped to, whether it may
// write (the member role) and whether it is a cloud admin (Swift's
// reseller admin: every account, and the account quota).
type Caller struct {
	Project string
	User    string
	Write   bool
	Admin   bool
	// ProjectName, UserName and Roles (names), and whether the project
	// and the user are in the default domain, are what container ACLs
	// may name.
	ProjectName, UserName string
	Roles                 []string
	DefaultDomain         bool
	// Anonymous is a request without a token: only ACLs with referrer
	// grants let it in, by its Referrer (the Referer header).
	Anonymous bool
	Referrer  string
}

// CallerOf returns the caller a Keystone token stands for.
func CallerOf(t identity.Token) Caller {
	return Caller{Project: t.ProjectID, User: t.UserID, Write: t.HasRole(identity.RoleMember), Admin: t.CloudAdmin(),
		ProjectName: t.ProjectName, UserName: t.UserName, Roles: t.RoleNames(),
		DefaultDomain: t.ProjectDomain == identity.DefaultDomainID && t.UserDomainID == identity.DefaultDomainID}
}

// allow says whether c may read (or write) account itself (its listing,
// its metadata, its containers' creation and metadata): its own
// project's, or any for a cloud admin. Another project's account is
// ErrForbidden for every path under it, existing or not; ACLs grant
// only objects and listings (authorize).
func allow(c Caller, account string, write bool) error {
	switch {
	case c.Anonymous:
		return ErrUnauthorized
	case c.Admin:
		return nil
	case c.Project == "" || c.Project != account:
		return ErrForbidden
	case write && !c.Write:
		return ErrForbidden
	}
	return nil
}

// MetaChange is a POST's (or an existing container's PUT's) change to
// user metadata: Set keys to values, Remove keys (Swift's empty values
// and X-Remove-*). Keys are lower case without the header prefix.
type MetaChange struct {
	Set    map[string]string
	Remove []string
}

func (m MetaChange) apply(meta map[string]string) map[string]string {
	out := maps.Clone(meta)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range m.Remove {
		delete(out, k)
	}
	for k, v := range m.Set {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// checkMeta applies Swift's limits on one resource's metadata.
func checkMeta(what string, meta map[string]string) error {
	if err := peers.CheckObjectMetadata(meta); err != nil {
		return invalid("%s metadata: %s", what, strings.TrimSuffix(strings.TrimPrefix(err.Error(), "object metadata"), ": "+peers.ErrInvalid.Error()))
	}
	return nil
}

// checkQuotaMeta refuses quota metadata that is not a whole number.
func checkQuotaMeta(set map[string]string, keys ...string) error {
	for _, k := range keys {
		if v, ok := set[k]; ok && v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return invalid("Invalid %s: %q is not a whole number", k, v)
			}
		}
	}
	return nil
}

// CreateContainer makes the container, or (it exists) applies change to
// its metadata, acl to its ACLs and vers to its versioning as Swift's
// PUT does: created says which.
func (s *Service) CreateContainer(ctx context.Context, c Caller, account, name string, change MetaChange, acl ACLChange, vers *VersionsChange) (created bool, err error) {
	if err := allow(c, account, true); err != nil {
		return false, err
	}
	if err := peers.CheckContainerName(name); err != nil {
		return false, invalid("Container name must be 1 to %d bytes of UTF-8 without '/' or NUL", peers.MaxContainerNameBytes)
	}
	if err := checkQuotaMeta(change.Set, metaQuotaBytes, metaQuotaCount); err != nil {
		return false, err
	}
	if err := acl.check(); err != nil {
		return false, err
	}
	if err := vers.check(); err != nil {
		return false, err
	}
	meta := change.apply(nil)
	if err := checkMeta("container", meta); err != nil {
		return false, err
	}
	if _, err := s.container(ctx, account, name); err == nil {
		_, err := s.UpdateContainer(ctx, c, account, name, change, acl, vers)
		return false, err
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	m, peerName, err := s.placeContainer(ctx, c, account, name)
	if err != nil {
		return false, err
	}
	now := time.Now().UTC()
	ct := Container{Project: account, Name: name, PeerID: m.Peer.ID, PeerContainer: peerName, Meta: meta, CreatedAt: now, UpdatedAt: now}
	acl.apply(&ct)
	vers.apply(&ct)
	err = s.putContainer(ctx, ct, 0)
	if err == nil {
		return true, nil
	}
	// Undo the peer's container: it is empty and no record names it.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
	defer cancel()
	if derr := m.Cloud.(peers.Objects).DeleteContainer(dctx, peerName); derr != nil {
		s.Log.WithError(derr).WithFields(logrus.Fields{"peer": m.Peer.Name, "peer_container": peerName}).Warn("empty container left on its peer")
	}
	if errors.Is(err, registry.ErrConflict) {
		// Another request made it first: this PUT is an update.
		_, err := s.UpdateContainer(ctx, c, account, name, change, acl, vers)
		return false, err
	}
	return false, fmt.Errorf("recording container %q: %w", name, err)
}

// placeContainer chooses a peer for a new container and makes the
// peer-side container there: the connected peers with object storage
// (and, when they report it, free object bytes) are the candidates; the
// placement policy orders them (labels, cost, health); a peer that
// refuses hands over to the next.
func (s *Service) placeContainer(ctx context.Context, c Caller, account, name string) (*peers.Member, string, error) {
	var candidates []registry.Peer
	var reasons []string
	for _, m := range s.Pool.Members() {
		_, objects := m.Cloud.(peers.Objects)
		switch {
		case m.Cloud == nil:
			reasons = append(reasons, m.Peer.Name+": not connected")
		case !objects:
			reasons = append(reasons, m.Peer.Name+": no object storage")
		case !m.Usable():
			reasons = append(reasons, fmt.Sprintf("%s: %s", m.Peer.Name, m.Peer.Status))
		case m.Peer.Capacity.ObjectBytes.Total > 0 && m.Peer.Capacity.ObjectBytes.Free() == 0:
			reasons = append(reasons, m.Peer.Name+": object storage full")
		default:
			candidates = append(candidates, m.Peer)
		}
	}
	if len(candidates) > 0 {
		decision, err := s.Placer.Place(ctx, policy.Request{Kind: Kind, Project: account, User: c.User, Name: name}, candidates)
		if err != nil {
			return nil, "", err
		}
		for _, p := range decision.Allowed() {
			m, ok := s.Pool.Get(p.ID)
			if !ok || m.Cloud == nil {
				continue
			}
			objects, ok := m.Cloud.(peers.Objects)
			if !ok {
				continue
			}
			peerName := s.PeerPrefix() + uuid.NewString()
			pctx, cancel := context.WithTimeout(ctx, s.timeout())
			err := objects.CreateContainer(pctx, peerName)
			cancel()
			if err != nil {
				s.Log.WithError(err).WithFields(logrus.Fields{"peer": p.Name, "container": name}).Warn("container create: peer refused; trying the next")
				reasons = append(reasons, p.Name+": refused the container")
				continue
			}
			return m, peerName, nil
		}
		if r := decision.Explain(); r != "no peers in the pool" {
			reasons = append(reasons, r)
		}
	}
	s.Log.WithFields(logrus.Fields{"container": name, "project": account, "reasons": reasons}).Warn("no peer can hold a new container")
	return nil, "", &Error{Message: "No storage can hold a new container now", Err: ErrNoCapacity}
}

// UpdateContainer applies change to a container's metadata, acl to its
// ACLs and vers (nil: none) to its versioning (Swift's POST).
func (s *Service) UpdateContainer(ctx context.Context, c Caller, account, name string, change MetaChange, acl ACLChange, vers *VersionsChange) (Container, error) {
	if err := allow(c, account, true); err != nil {
		return Container{}, err
	}
	if err := checkQuotaMeta(change.Set, metaQuotaBytes, metaQuotaCount); err != nil {
		return Container{}, err
	}
	if err := acl.check(); err != nil {
		return Container{}, err
	}
	if err := vers.check(); err != nil {
		return Container{}, err
	}
	for {
		ct, at, err := s.loadContainer(ctx, account, name)
		if err != nil {
			return Container{}, err
		}
		ct.Meta = change.apply(ct.Meta)
		acl.apply(&ct)
		vers.apply(&ct)
		if err := checkMeta("container", ct.Meta); err != nil {
			return Container{}, err
		}
		ct.UpdatedAt = time.Now().UTC()
		err = s.putContainer(ctx, ct, at)
		if errors.Is(err, registry.ErrConflict) {
			continue
		}
		return ct, err
	}
}

// DeleteContainer removes an empty container: one holding objects is
// ErrNotEmpty.
func (s *Service) DeleteContainer(ctx context.Context, c Caller, account, name string) error {
	if err := allow(c, account, true); err != nil {
		return err
	}
	ct, err := s.container(ctx, account, name)
	if err != nil {
		return err
	}
	objects, err := s.objects(ct)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	err = objects.DeleteContainer(pctx, ct.PeerContainer)
	if errors.Is(err, peers.ErrConflict) {
		return &Error{Message: "There was a conflict when trying to complete your request.", Err: ErrNotEmpty}
	}
	if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return peerErr(err, "deleting container "+name)
	}
	s.usage.forget(ct.PeerContainer)
	return s.deleteContainerRecord(ctx, account, name)
}

// ContainerInfo is a container with its usage. Owner says whether the
// caller owns it: only an owner is shown its ACLs.
type ContainerInfo struct {
	Container
	peers.ContainerStats
	Owner bool
}

// GetContainer returns a container with its count and bytes, read from
// its peer.
func (s *Service) GetContainer(ctx context.Context, c Caller, account, name string) (ContainerInfo, error) {
	ct, err := s.authorize(ctx, c, account, name, OpList)
	if err != nil {
		return ContainerInfo{}, err
	}
	st, err := s.stats(ctx, ct, 0)
	if err != nil {
		return ContainerInfo{}, err
	}
	return ContainerInfo{Container: ct, ContainerStats: st, Owner: owns(c, account)}, nil
}

// objects returns the peers.Objects holding ct.
func (s *Service) objects(ct Container) (peers.Objects, error) {
	m, ok := s.Pool.Get(ct.PeerID)
	if !ok || m.Cloud == nil {
		return nil, &Error{Message: "The storage holding this container is not available", Err: ErrUnavailable}
	}
	o, ok := m.Cloud.(peers.Objects)
	if !ok {
		return nil, &Error{Message: "The storage holding this container is not available", Err: ErrUnavailable}
	}
	return o, nil
}

// PeerOf returns the ID of the peer holding a container and the
// container's name there: for operators and tests, never shown to a
// tenant.
func (s *Service) PeerOf(ctx context.Context, project, name string) (peerID, peerContainer string, err error) {
	ct, err := s.container(ctx, project, name)
	return ct.PeerID, ct.PeerContainer, err
}
