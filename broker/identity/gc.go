package identity

import (
	"context"
	"encoding/json"
	"errors"
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
