package object

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// usageCache holds containers' counts and bytes as last read from their
// peers, by peer-side name, so an account's HEAD and listing ask each of
// the project's containers' peers at most once per UsageTTL. This
// broker's own writes forget the entry they change.
type usageCache struct {
	mu sync.Mutex
	m  map[string]usageEntry
}

type usageEntry struct {
	stats peers.ContainerStats
	at    time.Time
}

func (u *usageCache) get(name string, ttl time.Duration) (peers.ContainerStats, bool, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.m[name]
	return e.stats, ok, ok && time.Since(e.at) < ttl
}

func (u *usageCache) put(name string, st peers.ContainerStats) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]usageEntry{}
	}
	u.m[name] = usageEntry{stats: st, at: time.Now()}
}

func (u *usageCache) forget(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.m, name)
}

func (s *Service) usageTTL() time.Duration {
	if s.UsageTTL > 0 {
		return s.UsageTTL
	}
	return 2 * time.Second
}

// stats reads a container's usage from its peer, or from the cache when
// it is younger than maxAge (0: always the peer).
func (s *Service) stats(ctx context.Context, ct Container, maxAge time.Duration) (peers.ContainerStats, error) {
	if maxAge > 0 {
		if st, _, fresh := s.usage.get(ct.PeerContainer, maxAge); fresh {
			return st, nil
		}
	}
	objects, err := s.objects(ct)
	if err != nil {
		return peers.ContainerStats{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	st, err := objects.ContainerStats(pctx, ct.PeerContainer)
	if err != nil {
		return peers.ContainerStats{}, peerErr(err, "container "+ct.Name)
	}
	s.usage.put(ct.PeerContainer, st)
	return st, nil
}

// usages reads the containers' usage, in parallel (at most 16 peers'
// calls at once), each from the cache when fresh. A container whose peer
// does not answer shows its last known usage (zero when none) and is
// logged: an account listing is not refused for one slow peer.
func (s *Service) usages(ctx context.Context, cts []Container) []peers.ContainerStats {
	out := make([]peers.ContainerStats, len(cts))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, ct := range cts {
		if st, _, fresh := s.usage.get(ct.PeerContainer, s.usageTTL()); fresh {
			out[i] = st
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := s.stats(ctx, ct, 0)
			if err != nil {
				s.Log.WithError(err).WithFields(logrus.Fields{"container": ct.Name, "peer": ct.PeerID}).Warn("container usage unavailable; showing the last known")
				st, _, _ = s.usage.get(ct.PeerContainer, 0)
			}
			out[i] = st
		}()
	}
	wg.Wait()
	return out
}

// AccountInfo is an account's metadata and totals.
type AccountInfo struct {
	Account
	Containers int
	peers.ContainerStats
}

// GetAccount returns the account's metadata and its totals over its
// containers.
func (s *Service) GetAccount(ctx context.Context, c Caller, account string) (AccountInfo, error) {
	if err := allow(c, account, false); err != nil {
		return AccountInfo{}, err
	}
	a, err := s.account(ctx, account)
	if err != nil {
		return AccountInfo{}, err
	}
	cts, err := s.projectContainers(ctx, account)
	if err != nil {
		return AccountInfo{}, err
	}
	info := AccountInfo{Account: a, Containers: len(cts)}
	for _, st := range s.usages(ctx, cts) {
		info.Objects += st.Objects
		info.Bytes += st.Bytes
	}
	return info, nil
}

// UpdateAccount applies change to the account's metadata. The account
// quota (quota-bytes) is the cloud admin's to set, as Swift's
// account_quotas keeps it the reseller's.
func (s *Service) UpdateAccount(ctx context.Context, c Caller, account string, change MetaChange) (Account, error) {
	if err := allow(c, account, true); err != nil {
		return Account{}, err
	}
	_, setQuota := change.Set[metaQuotaBytes]
	if (setQuota || containsString(change.Remove, metaQuotaBytes)) && !c.Admin {
		return Account{}, ErrForbidden
	}
	if err := checkQuotaMeta(change.Set, metaQuotaBytes); err != nil {
		return Account{}, err
	}
	return s.changeAccount(ctx, account, func(a *Account) error {
		a.Meta = change.apply(a.Meta)
		a.UpdatedAt = time.Now().UTC()
		return checkMeta("account", a.Meta)
	})
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ListOptions pages a listing with Swift's meanings (peers.ObjectListOptions).
type ListOptions = peers.ObjectListOptions

// ContainerEntry is one row of an account listing: a container with its
// usage, or (Subdir set) a rolled-up prefix.
type ContainerEntry struct {
	Name         string
	Subdir       string
	Count, Bytes int64
	LastModified time.Time
}

// ListContainers lists the account's containers with Swift's paging and
// roll-up; only the page's containers' usage is read.
func (s *Service) ListContainers(ctx context.Context, c Caller, account string, opts ListOptions) ([]ContainerEntry, error) {
	if err := allow(c, account, false); err != nil {
		return nil, err
	}
	if err := peers.CheckListOptions(opts); err != nil {
		return nil, invalid("Maximum limit is %d", peers.MaxListLimit)
	}
	cts, err := s.projectContainers(ctx, account)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(cts))
	for i, ct := range cts {
		names[i] = ct.Name
	}
	rows := Page(names, opts)
	byName := make(map[string]Container, len(cts))
	for _, ct := range cts {
		byName[ct.Name] = ct
	}
	var page []Container
	for _, r := range rows {
		if r.Subdir == "" {
			page = append(page, byName[r.Name])
		}
	}
	stats := s.usages(ctx, page)
	out := make([]ContainerEntry, 0, len(rows))
	i := 0
	for _, r := range rows {
		if r.Subdir != "" {
			out = append(out, ContainerEntry{Subdir: r.Subdir})
			continue
		}
		ct := page[i]
		out = append(out, ContainerEntry{Name: ct.Name, Count: stats[i].Objects, Bytes: stats[i].Bytes, LastModified: ct.UpdatedAt})
		i++
	}
	return out, nil
}

// Row is one entry of a paged name listing: a name, or a rolled-up
// Subdir.
type Row struct{ Name, Subdir string }

// Page applies Swift's listing rules (prefix, delimiter roll-up, marker,
// end_marker, limit, reverse; see peers.ObjectListOptions) to names,
// which are sorted ascending.
func Page(names []string, opts ListOptions) []Row {
	limit := opts.Limit
	if limit == 0 {
		limit = peers.MaxListLimit
	}
	var out []Row
	n := len(names)
	for k := 0; k < n && len(out) < limit; k++ {
		name := names[k]
		if opts.Reverse {
			name = names[n-1-k]
		}
		if !strings.HasPrefix(name, opts.Prefix) {
			continue
		}
		if opts.Reverse {
			if (opts.Marker != "" && name >= opts.Marker) || (opts.EndMarker != "" && name <= opts.EndMarker) {
				continue
			}
		} else if (opts.Marker != "" && name <= opts.Marker) || (opts.EndMarker != "" && name >= opts.EndMarker) {
			continue
		}
		if opts.Delimiter != "" {
			rest := name[len(opts.Prefix):]
			if i := strings.Index(rest, opts.Delimiter); i >= 0 {
				sub := opts.Prefix + rest[:i+len(opts.Delimiter)]
				if sub == opts.Marker || (len(out) > 0 && out[len(out)-1].Subdir == sub) {
					continue
				}
				out = append(out, Row{Subdir: sub})
				continue
			}
		}
		out = append(out, Row{Name: name})
	}
	return out
}

// TempURLKeys returns the temp URL keys that sign for a container's
// objects: the account's (X-Account-Meta-Temp-URL-Key and -Key-2) and
// the container's. They are for checking a signature, never shown: the
// caller has no identity yet.
func (s *Service) TempURLKeys(ctx context.Context, account, container string) ([]string, error) {
	a, err := s.account(ctx, account)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, k := range []string{"temp-url-key", "temp-url-key-2"} {
		if v := a.Meta[k]; v != "" {
			keys = append(keys, v)
		}
	}
	ct, err := s.container(ctx, account, container)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	for _, k := range []string{"temp-url-key", "temp-url-key-2"} {
		if v := ct.Meta[k]; v != "" {
			keys = append(keys, v)
		}
	}
	return keys, nil
}
