package openstack

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/sirupsen/logrus"
)

// RetryPolicy bounds the retries of idempotent calls (GET, HEAD, DELETE)
// that failed for a reason a second try may not meet: the connection, or a
// 429/500/502/503/504 answer. Nothing else is retried: a POST that timed
// out may have created the server, and a 4xx will not change.
type RetryPolicy struct {
	// MaxRetries after the first try; default 3. Negative disables retries.
	MaxRetries int
	// Base is the first backoff; each retry doubles it, up to Max.
	// Defaults 200ms and 5s. The actual sleep is drawn uniformly from
	// [backoff/2, backoff] ("equal jitter"), so brokers retrying against a
	// recovering cloud do not arrive in lockstep.
	Base, Max time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetries == 0 {
		p.MaxRetries = 3
	}
	if p.Base <= 0 {
		p.Base = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Second
	}
	return p
}

// Backoff returns the sleep before retry n (1-based), jittered. A
// Retry-After the cloud sent (in seconds) raises it, capped by Max.
func (p RetryPolicy) Backoff(n uint, retryAfter time.Duration) time.Duration {
	d := p.Base
	for i := uint(1); i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, p.Max)
	}
	return d
}

// Retryable reports whether a call by method that failed with err may be
// tried again.
func Retryable(method string, err error) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
	default:
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if code, _, ok := responseCode(err); ok {
		switch code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return isConnectionError(err)
}

// retryFunc is gophercloud's hook, called after every failed request with
// the count of failures so far. Returning nil retries; returning err ends
// the call with it. A retry that could not finish before ctx's deadline is
// not started.
func (p RetryPolicy) retryFunc(log logrus.FieldLogger) gophercloud.RetryFunc {
	return func(ctx context.Context, method, url string, _ *gophercloud.RequestOpts, err error, failCount uint) error {
		if p.MaxRetries < 0 || failCount > uint(p.MaxRetries) || !Retryable(method, err) || ctx.Err() != nil {
			return err
		}
		d := p.Backoff(failCount, retryAfter(err))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err
		}
		log.WithError(err).WithFields(logrus.Fields{"method": method, "url": url, "attempt": failCount + 1, "backoff": d}).Debug("openstack: retrying")
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return err
		case <-t.C:
			return nil
		}
	}
}

// retryAfter reads a Retry-After header in seconds from a response error.
func retryAfter(err error) time.Duration {
	var v gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &v) || v.ResponseHeader == nil {
		return 0
	}
	s, e := strconv.Atoi(v.ResponseHeader.Get("Retry-After"))
	if e != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
