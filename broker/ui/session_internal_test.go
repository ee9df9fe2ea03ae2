package ui

import (
	"testing"
	"time"
)

// TestSessionsExpireAndAreSwept: a session ends at its token's expiry or
// after the idle time, and the sweep removes it from memory.
func TestSessionsExpireAndAreSwept(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	idle := 30 * time.Minute
	for _, tc := range []struct {
		name    string
		expires time.Duration // the token's lifetime
		after   time.Duration // when the session is used again
		alive   bool
	}{
		{name: "fresh", expires: time.Hour, after: time.Minute, alive: true},
		{name: "idle too long", expires: 2 * time.Hour, after: idle + time.Second, alive: false},
		{name: "token expired", expires: 10 * time.Minute, after: 11 * time.Minute, alive: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss := newSessions()
			clock := now
			ss.now = func() time.Time { return clock }
			id := ss.create(&session{token: "tok", expiresAt: now.Add(tc.expires)}, idle)
			if _, ok := ss.get(id, idle); !ok {
				t.Fatal("a new session is not found")
			}
			clock = now.Add(tc.after)
			if n := ss.sweep(idle); (n == 1) != tc.alive {
				t.Fatalf("after the sweep %d sessions are left", n)
			}
			if _, ok := ss.get(id, idle); ok != tc.alive {
				t.Fatalf("alive %v, want %v", ok, tc.alive)
			}
		})
	}
	t.Run("creating sweeps", func(t *testing.T) {
		ss := newSessions()
		clock := now
		ss.now = func() time.Time { return clock }
		ss.create(&session{expiresAt: now.Add(time.Minute)}, idle)
		clock = now.Add(2 * time.Minute)
		ss.create(&session{expiresAt: clock.Add(time.Hour)}, idle)
		if n := len(ss.byHash); n != 1 {
			t.Fatalf("%d sessions kept, want the live one only", n)
		}
	})
	t.Run("unknown and empty IDs", func(t *testing.T) {
		ss := newSessions()
		for _, id := range []string{"", "nope"} {
			if _, ok := ss.get(id, idle); ok {
				t.Fatalf("%q found", id)
			}
		}
	})
}
