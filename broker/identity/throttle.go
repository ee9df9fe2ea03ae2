package identity

import (
	"strings"
	"sync"
	"time"
)

// Login throttling: each replica counts failed password logins per user
// name (domain and name, or user ID) and, past Failures within Window,
// refuses further attempts for that name with 429 until the window ends,
// without spending a bcrypt check on them. It bounds password guessing and
// the CPU bcrypt costs; the policy's lockout (LockoutFailures) is the
// cluster-wide, persistent counterpart.

const (
	// DefaultLoginFailures and DefaultLoginWindow: 20 failed logins of one
	// name a minute, per replica.
	DefaultLoginFailures = 20
	DefaultLoginWindow   = time.Minute
	maxThrottled         = 100_000
)

// LoginThrottle configures the throttle; the zero value is the defaults,
// Failures < 0 turns it off.
type LoginThrottle struct {
	Failures int
	Window   time.Duration
}

type failures struct {
	count int
	since time.Time
}

type throttle struct {
	mu    sync.Mutex
	fails map[string]failures
}

func (k *Keystone) throttleLimits() (int, time.Duration) {
	n, w := k.Throttle.Failures, k.Throttle.Window
	if n == 0 {
		n = DefaultLoginFailures
	}
	if w <= 0 {
		w = DefaultLoginWindow
	}
	return n, w
}

// loginKey is whose failures a login counts toward: the user found, or
// the name asked for (a name that does not exist is throttled too).
func loginKey(asked nameOrID, found User) string {
	if found.ID != "" {
		return "id:" + found.ID
	}
	if asked.ID != "" {
		return "id:" + asked.ID
	}
	dom := DefaultDomainID
	if asked.Domain != nil {
		dom = asked.Domain.ID + "/" + strings.ToLower(asked.Domain.Name)
	}
	return dom + "/" + strings.ToLower(asked.Name)
}

// throttled reports whether logins of key are refused now, and until when.
func (k *Keystone) throttled(key string, now time.Time) (time.Time, bool) {
	n, w := k.throttleLimits()
	if n < 0 {
		return time.Time{}, false
	}
	k.throttle.mu.Lock()
	defer k.throttle.mu.Unlock()
	f, ok := k.throttle.fails[key]
	if !ok || now.Sub(f.since) >= w {
		return time.Time{}, false
	}
	return f.since.Add(w), f.count >= n
}

// loginFailed counts a failed login of key.
func (k *Keystone) loginFailed(key string, now time.Time) {
	n, w := k.throttleLimits()
	if n < 0 {
		return
	}
	k.throttle.mu.Lock()
	defer k.throttle.mu.Unlock()
	if k.throttle.fails == nil {
		k.throttle.fails = map[string]failures{}
	}
	if len(k.throttle.fails) >= maxThrottled {
		for key, f := range k.throttle.fails {
			if now.Sub(f.since) >= w {
				delete(k.throttle.fails, key)
			}
		}
		if len(k.throttle.fails) >= maxThrottled {
			clear(k.throttle.fails) // bounded: a flood of names forgets all
		}
	}
	f := k.throttle.fails[key]
	if now.Sub(f.since) >= w {
		f = failures{since: now}
	}
	f.count++
	k.throttle.fails[key] = f
}
