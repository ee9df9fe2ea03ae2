package identity

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"
)

// Name implements the broker's gc.Collector: the token service's records
// (expired tokens, revocations that can no longer void a live token) are
// swept by one replica for all, through the garbage collector.
func (s *Tokens) Name() string { return "identity-tokens" }

// Collect implements gc.Collector: Sweep at now.
func (s *Tokens) Collect(ctx context.Context, now time.Time) (int, error) { return s.sweep(ctx, now) }

// DefaultExpiredAppCredentialRetention is how long an expired application
// credential stays listed (and counts against its user's limit) before the
// garbage collector deletes it.
const DefaultExpiredAppCredentialRetention = 30 * 24 * time.Hour

// ExpiredAppCredentials is the garbage collector of application
// credentials that expired more than Retention ago. Keystone keeps them
// until their user deletes them; here they would count against the user's
// MaxAppCredentialsPerUser for good.
type ExpiredAppCredentials struct {
	Creds     *AppCredentials
	Retention time.Duration
}

// Name implements gc.Collector.
func (e ExpiredAppCredentials) Name() string { return "identity-expired-app-credentials" }

// Collect implements gc.Collector.
func (e ExpiredAppCredentials) Collect(ctx context.Context, now time.Time) (int, error) {
	kvs, _, err := e.Creds.dir.store.List(ctx, appCredsPrefix)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-e.Retention)
	removed := 0
	var errs []error
	for _, kv := range kvs {
		var ac AppCredential
		if json.Unmarshal(kv.Value, &ac) != nil || !ac.Expired(cutoff) {
			continue
		}
		if err := e.Creds.Delete(ctx, ac.UserID, ac.ID); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// DeletedUsersCredentials is the garbage collector of the credentials
// (application, EC2, /v3 credentials), access rules and trusts of users
// that are gone:
// deleting a user deletes them, but a failure there, or a user deleted
// another way, would leave them for good.
type DeletedUsersCredentials struct {
	EC2    *EC2Credentials // the EC2 API's (sealed) instance
	Tokens *Tokens
}

// Name implements gc.Collector.
func (e DeletedUsersCredentials) Name() string { return "identity-deleted-users-credentials" }

// Collect implements gc.Collector: it returns how many users' leftovers
// it removed. Users are read from the Store, not a replica's memory,
// which may not have seen one just created.
func (e DeletedUsersCredentials) Collect(ctx context.Context, now time.Time) (int, error) {
	ctx = ReadStore(ctx)
	owners, err := e.owners(ctx)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, u := range owners {
		_, err := e.EC2.dir.GetUser(ctx, u)
		switch {
		case errors.Is(err, ErrNotFound):
			if err := forgetCredentials(ctx, e.EC2, e.Tokens, u); err != nil {
				errs = append(errs, err)
				continue
			}
			removed++
		case err != nil:
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// owners lists, sorted and once each, the users who own a credential or
// a trust.
func (e DeletedUsersCredentials) owners(ctx context.Context) ([]string, error) {
	store := e.EC2.dir.store
	set := map[string]bool{}
	for _, index := range []string{ec2CredsByUserPrefix, credentialsByUserPrefix, trustsByUserPrefix} {
		kvs, _, err := store.List(ctx, index)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			user, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, index), "/")
			set[user] = true
		}
	}
	rules, _, err := store.List(ctx, accessRulesPrefix)
	if err != nil {
		return nil, err
	}
	for _, kv := range rules {
		user, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, accessRulesPrefix), "/")
		set[user] = true
	}
	acs, _, err := store.List(ctx, appCredsPrefix)
	if err != nil {
		return nil, err
	}
	for _, kv := range acs {
		var ac AppCredential
		if json.Unmarshal(kv.Value, &ac) == nil && ac.UserID != "" {
			set[ac.UserID] = true
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}
