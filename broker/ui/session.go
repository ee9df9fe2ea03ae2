package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Cookie names: the session, and the login form's double-submit token
// (the login POST has no session to hold a CSRF token yet).
const (
	sessionCookie = "cloudmux_session"
	loginCookie   = "cloudmux_login"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// session is one logged-in browser. The token is the user's Keystone
// token; the browser never sees it.
type session struct {
	token     string
	csrf      string
	userID    string
	userName  string
	expiresAt time.Time // the token's expiry: a session never outlives it

	mu       sync.Mutex
	lastSeen time.Time
	// ended is closed when the session ends (logout, expiry, idleness,
	// its token revoked), so a stream serving it ends too.
	ended chan struct{}
}

// done is closed when the session has ended.
func (s *session) done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == nil {
		s.ended = make(chan struct{})
	}
	return s.ended
}

// end marks the session ended (once).
func (s *session) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == nil {
		s.ended = make(chan struct{})
	}
	select {
	case <-s.ended:
	default:
		close(s.ended)
	}
}

// expiry is when the session's token expires.
func (s *session) expiry() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiresAt
}

// sessions are kept in memory by the SHA-256 of their cookie value, so a
// dump of this map is no cookie jar. Expired and idle sessions are swept
// when sessions are made (at most once a minute), so the map is bounded by
// the logins of the last idle period.
type sessions struct {
	mu        sync.Mutex
	byHash    map[string]*session
	lastSweep time.Time
	now       func() time.Time
}

func newSessions() *sessions {
	return &sessions{byHash: map[string]*session{}, now: time.Now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

// create stores a session and returns its cookie value.
func (ss *sessions) create(s *session, idle time.Duration) string {
	id := randomToken()
	now := ss.now()
	s.csrf, s.lastSeen = randomToken(), now
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if now.Sub(ss.lastSweep) > time.Minute {
		ss.sweepLocked(now, idle)
	}
	ss.byHash[hashOf(id)] = s
	return id
}

// get returns the live session of a cookie value, and marks it used.
func (ss *sessions) get(id string, idle time.Duration) (*session, bool) {
	if id == "" {
		return nil, false
	}
	ss.mu.Lock()
	s, ok := ss.byHash[hashOf(id)]
	ss.mu.Unlock()
	if !ok {
		return nil, false
	}
	now := ss.now()
	s.mu.Lock()
	dead := now.After(s.expiresAt) || now.Sub(s.lastSeen) > idle
	if !dead {
		s.lastSeen = now
	}
	s.mu.Unlock()
	if dead {
		ss.drop(id)
		return nil, false
	}
	return s, true
}

// drop ends the session of a cookie value.
func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	s := ss.byHash[hashOf(id)]
	delete(ss.byHash, hashOf(id))
	ss.mu.Unlock()
	if s != nil {
		s.end()
	}
}

// sweep removes every expired or idle session; it returns how many are
// left.
func (ss *sessions) sweep(idle time.Duration) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.sweepLocked(ss.now(), idle)
	return len(ss.byHash)
}

func (ss *sessions) sweepLocked(now time.Time, idle time.Duration) {
	for h, s := range ss.byHash {
		s.mu.Lock()
		dead := now.After(s.expiresAt) || now.Sub(s.lastSeen) > idle
		s.mu.Unlock()
		if dead {
			delete(ss.byHash, h)
			s.end()
		}
	}
	ss.lastSweep = now
}

// swap replaces a session's token (a project switch), keeping its ID and
// CSRF token.
func (s *session) swap(token string, expiresAt time.Time) (old string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, s.token, s.expiresAt = s.token, token, expiresAt
	return old
}

func (s *session) currentToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// sameToken compares two secrets in constant time; empty never matches.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
