package consul

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// watchWaitTime is how long one blocking query may be held by Consul before
// it answers "nothing changed" and Watch asks again. Long polls are cheap
// for Consul; the value bounds how long a Watch takes to notice that the
// cluster's index went backwards (see Watch), and how long a blocking
// query Consul failed to wake can hold a watcher behind: after a leader's
// death, a query was seen to sleep through later writes to its prefix.
const watchWaitTime = time.Minute

// Store is the Consul backend of registry.Store, and also its
// registry.ServiceCatalog: both use one client, so one Config (address,
// token, TLS) covers KV and catalog, and the broker wires one value into
// both roles.
type Store struct {
	client *api.Client
	kv     *api.KV
	prefix string
	log    logrus.FieldLogger
	// metrics is nil until Instrument.
	metrics *storeMetrics
	// retryBudget bounds the retries of one call (Config.RetryBudget).
	retryBudget time.Duration
	// live binds new sessions to this broker's liveness check once
	// RunLiveness registered it.
	live liveness
}

var (
	_ registry.Store          = (*Store)(nil)
	_ registry.ServiceCatalog = (*Store)(nil)
)

// New validates cfg and returns a Store. It does not contact Consul, so a
// broker can start while Consul is still coming up; use Ping for readiness.
// A nil log discards.
func New(cfg Config, log logrus.FieldLogger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consul: invalid config: %w", err)
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	apiCfg, err := cfg.apiConfig()
	if err != nil {
		return nil, fmt.Errorf("consul: %w", err)
	}
	client, err := api.NewClient(apiCfg)
	if err != nil {
		return nil, fmt.Errorf("consul: client: %w", err)
	}
	s := &Store{
		client: client,
		kv:     client.KV(),
		prefix: cfg.keyPrefix(),
		log:    log,

		retryBudget: cfg.retryBudget(),
	}
	log.WithFields(logrus.Fields{
		"address":    cfg.Address,
		"scheme":     cfg.scheme(),
		"datacenter": cfg.Datacenter,
		"key_prefix": s.prefix,
		"token_set":  cfg.Token != "",
	}).Debug("consul: store configured")
	return s, nil
}

// Ping checks that Consul answers and has a leader (writes need one).
func (s *Store) Ping(ctx context.Context) error {
	leader, err := s.client.Status().LeaderWithQueryOptions(readOpts(ctx))
	if err != nil {
		return s.fail(ctx, "ping", "", err)
	}
	if leader == "" {
		return fmt.Errorf("consul: ping: no cluster leader: %w", registry.ErrUnavailable)
	}
	return nil
}

// Reads use Consul's default consistency mode: served by the leader, stale
// only across a leader change. CAS correctness does not need more, because
// the compare happens inside the Raft write itself: a read that returned an
// old ModifyIndex makes the following CAS fail with ErrConflict, and the
// caller re-reads. RequireConsistent would add a leader round trip to every
// read for no gain in safety.
func readOpts(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func writeOpts(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// fullKey validates a caller's key and puts the prefix in front of it.
func (s *Store) fullKey(key string) (string, error) {
	// registry.ValidateKey carries the rules Consul's HTTP API imposes
	// ("." and ".." segments, invalid UTF-8), so memory refuses them too.
	if err := registry.ValidateKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// fullPrefix is fullKey for List and Watch, where "" means everything.
func (s *Store) fullPrefix(prefix string) (string, error) {
	if err := registry.ValidatePrefix(prefix); err != nil {
		return "", err
	}
	return s.prefix + prefix, nil
}

func (s *Store) toKV(p *api.KVPair) registry.KV {
	return registry.KV{
		Key:         strings.TrimPrefix(p.Key, s.prefix),
		Value:       p.Value,
		CreateIndex: p.CreateIndex,
		ModifyIndex: p.ModifyIndex,
		Session:     p.Session,
	}
}

func (s *Store) toKVs(pairs api.KVPairs) []registry.KV {
	out := make([]registry.KV, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, s.toKV(p))
	}
	// Consul already answers in key order; sorting again costs little and
	// makes the contract independent of that detail.
	slices.SortFunc(out, func(a, b registry.KV) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Get implements registry.Store.
func (s *Store) Get(ctx context.Context, key string) (_ registry.KV, err error) {
	defer s.track(ctx, "get")(&err)
	full, err := s.fullKey(key)
	if err != nil {
		return registry.KV{}, err
	}
	var pair *api.KVPair
	err = s.retry(ctx, func() (err error) {
		pair, _, err = s.kv.Get(full, readOpts(ctx))
		return err
	})
	if err != nil {
		return registry.KV{}, s.fail(ctx, "get", key, err)
	}
	if pair == nil {
		return registry.KV{}, fmt.Errorf("consul: get %q: %w", key, registry.ErrNotFound)
	}
	return s.toKV(pair), nil
}

// Put implements registry.Store. It goes through the transaction API
// because a plain KV PUT answers only "true" and the contract needs the new
// modify index; reading it back afterwards could see someone else's write.
//
// Consul does not bump the modify index when the value written equals the
// stored one (the contract's rule): Put returns the unchanged index.
//
// The transaction API carries values base64-encoded in JSON under a
// txn_max_req_len cap (512 KiB by default), hence registry.MaxValueSize.
func (s *Store) Put(ctx context.Context, key string, value []byte) (_ uint64, err error) {
	defer s.track(ctx, "put")(&err)
	full, err := s.fullKey(key)
	if err != nil {
		return 0, err
	}
	if err := registry.ValidateValue(value); err != nil {
		return 0, err
	}
	return s.setTxn(ctx, "put", key, &api.KVTxnOp{Verb: api.KVSet, Key: full, Value: value})
}

// CAS implements registry.Store with a transactional check-and-set, which
// Consul applies inside the Raft write: index 0 means create-only, any
// other index must equal the key's current modify index.
func (s *Store) CAS(ctx context.Context, key string, value []byte, index uint64) (_ uint64, err error) {
	defer s.track(ctx, "cas")(&err)
	full, err := s.fullKey(key)
	if err != nil {
		return 0, err
	}
	if err := registry.ValidateValue(value); err != nil {
		return 0, err
	}
	return s.setTxn(ctx, "cas", key, &api.KVTxnOp{Verb: api.KVCAS, Key: full, Value: value, Index: index})
}

// setTxn runs one set or cas operation and returns the key's new modify
// index from the transaction's result. It is tried again when it
// certainly did not happen (notApplied: during a leader election, or with
// the agent unreachable). A failure after the request left (the leader
// died holding it, the connection broke) is settled by reading the key
// back (settleLost); what that cannot settle is ErrUnavailable, never a
// success or a conflict the write did not earn.
func (s *Store) setTxn(ctx context.Context, op, key string, kvOp *api.KVTxnOp) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("consul: %s %q: %w", op, key, err)
	}
	r := s.retrier()
	resent := false // sent again after a lost answer said it had not landed
	for {
		results, rejected, err := s.txn(ctx, api.TxnOps{{KV: kvOp}})
		switch {
		case err == nil && rejected != nil && resent:
			// The first copy, still queued when we read the key back, may
			// be what moved it: a conflict we cannot know we earned.
			return 0, fmt.Errorf("consul: %s %q: its first attempt's answer was lost: %w", op, key, registry.ErrUnavailable)
		case err == nil && rejected != nil:
			return 0, s.rejected(op, key, kvOp.Index, rejected)
		case err == nil && (len(results) == 0 || results[0].KV == nil):
			return 0, fmt.Errorf("consul: %s %q: transaction returned no result", op, key)
		case err == nil:
			return results[0].KV.ModifyIndex, nil
		case notApplied(err):
			if !r.again(ctx, err) {
				return 0, s.fail(ctx, op, key, err)
			}
		default:
			idx, outcome := s.settleLost(ctx, kvOp, r)
			switch outcome {
			case lostApplied:
				return idx, nil
			case lostNotApplied:
				if r.again(ctx, err) {
					resent = true
					continue
				}
			}
			return 0, s.fail(ctx, op, key, err)
		}
	}
}

// A lost answer's write, as reading the key back settles it.
type lostOutcome int

const (
	lostUnknown lostOutcome = iota
	lostApplied
	lostNotApplied
)

// settleLost reads back the key of a set or cas whose answer was lost,
// with a consistent read (which waits out a new leader's barrier):
//   - a plain set (last writer wins) is done if the key holds our value,
//     and else safe to send again: a late copy of a last-writer-wins
//     write is just a later write;
//   - a cas whose key still has the index it named (or, create-only, is
//     still missing) did not happen, since any write would have moved it:
//     it is sent again;
//   - a cas whose key moved stays unknown, even to our own bytes: another
//     writer's identical bytes are not our change (two brokers taking the
//     same quota from 4 to 3 both write "3").
func (s *Store) settleLost(ctx context.Context, kvOp *api.KVTxnOp, r *retrier) (uint64, lostOutcome) {
	var pair *api.KVPair
	err := s.retryWith(ctx, r, func() (err error) {
		pair, _, err = s.kv.Get(kvOp.Key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
		return err
	})
	switch {
	case err != nil:
		return 0, lostUnknown
	case kvOp.Verb == api.KVSet && pair != nil && bytes.Equal(pair.Value, kvOp.Value):
		return pair.ModifyIndex, lostApplied
	case kvOp.Verb == api.KVSet:
		return 0, lostNotApplied
	case kvOp.Index == 0 && pair == nil, kvOp.Index != 0 && pair != nil && pair.ModifyIndex == kvOp.Index:
		return 0, lostNotApplied
	}
	return 0, lostUnknown
}

// Delete implements registry.Store.
func (s *Store) Delete(ctx context.Context, key string) (err error) {
	defer s.track(ctx, "delete")(&err)
	full, err := s.fullKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("consul: delete %q: %w", key, err)
	}
	// Deleting is idempotent: a retry after a lost answer is harmless.
	if err := s.retry(ctx, func() error { _, err := s.kv.Delete(full, writeOpts(ctx)); return err }); err != nil {
		return s.fail(ctx, "delete", key, err)
	}
	return nil
}

// DeleteCAS implements registry.Store. Consul's own delete-cas succeeds when
// the key is already gone; the contract (and the memory backend) call that a
// conflict, since the caller's view is stale. So the delete runs in a
// transaction behind a check-index operation, which fails for a missing key
// as well as for a moved index.
func (s *Store) DeleteCAS(ctx context.Context, key string, index uint64) (err error) {
	defer s.track(ctx, "delete_cas")(&err)
	full, err := s.fullKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("consul: delete-cas %q: %w", key, err)
	}
	r := s.retrier()
	for {
		_, rejected, err := s.txn(ctx, api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: full, Index: index}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: full}},
		})
		switch {
		case err == nil && rejected != nil:
			return s.rejected("delete-cas", key, index, rejected)
		case err == nil:
			return nil
		case !notApplied(err) || !r.again(ctx, err):
			// A lost answer stays unknown: the key gone may be another
			// deleter's doing, and callers decide who frees what by it.
			return s.fail(ctx, "delete-cas", key, err)
		}
	}
}

// List implements registry.Store. The index is Consul's X-Consul-Index for
// the prefix, which (like the memory backend's) covers deletes through
// Consul's tombstones and falls back to the whole KV table's index for an
// empty prefix.
func (s *Store) List(ctx context.Context, prefix string) (_ []registry.KV, _ uint64, err error) {
	defer s.track(ctx, "list")(&err)
	full, err := s.fullPrefix(prefix)
	if err != nil {
		return nil, 0, err
	}
	var (
		pairs api.KVPairs
		meta  *api.QueryMeta
	)
	err = s.retry(ctx, func() (err error) {
		pairs, meta, err = s.kv.List(full, readOpts(ctx))
		return err
	})
	if err != nil {
		return nil, 0, s.fail(ctx, "list", prefix, err)
	}
	return s.toKVs(pairs), meta.LastIndex, nil
}

// Watch implements registry.Store with Consul blocking queries.
//
// Consul answers a blocking query when the prefix's index passes index or
// when the wait time runs out; an answer at the same index is a timeout and
// Watch asks again. An answer below index means the cluster's index went
// backwards (state rebuilt from scratch): Watch returns it at once so the
// caller resynchronises. One difference from the memory backend remains:
// Consul itself holds a query whose index is ahead of the cluster's until
// the wait time ends (snapshot restores excepted, which Consul answers at
// once), so after a rebuild Watch may take up to watchWaitTime to answer.
func (s *Store) Watch(ctx context.Context, prefix string, index uint64) (_ []registry.KV, _ uint64, err error) {
	defer s.trackWatch(ctx)(&err)
	full, err := s.fullPrefix(prefix)
	if err != nil {
		return nil, 0, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWaitTime}).WithContext(ctx)
		pairs, meta, err := s.kv.List(full, q)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, 0, ctxErr // the contract: ctx.Err() itself
			}
			return nil, 0, s.fail(ctx, "watch", prefix, err)
		}
		switch idx := meta.LastIndex; {
		case index != 0 && idx == index:
			continue // wait time ran out with nothing new
		case idx < index:
			s.log.WithFields(logrus.Fields{"prefix": prefix, "index": index, "consul_index": idx}).
				Warn("consul: watch index went backwards; Consul state was reset")
			return s.toKVs(pairs), idx, nil
		default:
			return s.toKVs(pairs), idx, nil
		}
	}
}

// txn runs ops as one Consul transaction. A transaction Consul refused
// (HTTP 409: a check failed) comes back as the refusals' texts in rejected,
// with err nil. It posts through Raw rather than api.Txn because api.Txn
// flattens every other failure into a string without its status code, and a
// 500 (no leader) must stay distinguishable from a 400.
func (s *Store) txn(ctx context.Context, ops api.TxnOps) (api.TxnResults, []string, error) {
	var out api.TxnResponse
	_, err := s.client.Raw().Write("/v1/txn", ops, &out, writeOpts(ctx))
	if err != nil {
		if what, ok := txnRefusals(err); ok {
			return nil, what, nil
		}
		return nil, nil, err
	}
	return out.Results, nil, nil
}

// rejected turns a refused transaction into an error. A refusal for lack of
// ACL permission is not a conflict (retrying cannot help); every other
// refusal of our single-key transactions is a failed index check.
func (s *Store) rejected(op, key string, index uint64, what []string) error {
	msg := strings.Join(what, "; ")
	if strings.Contains(msg, "Permission denied") {
		return fmt.Errorf("consul: %s %q: %s (check the ACL token's key_prefix write rights)", op, key, msg)
	}
	if op == "cas" && index == 0 {
		return fmt.Errorf("consul: create %q: already exists: %w", key, registry.ErrConflict)
	}
	return fmt.Errorf("consul: %s %q at index %d: %s: %w", op, key, index, msg, registry.ErrConflict)
}
