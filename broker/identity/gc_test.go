package identity_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestExpiredAppCredentials: credentials that expired more than the
// retention ago go, with their name; unexpiring, live and recently
// expired ones stay.
func TestExpiredAppCredentials(t *testing.T) {
	const retention = 24 * time.Hour
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	creds := identity.NewAppCredentials(e.dir)
	alice := identity.Token{UserID: e.alice.ID, ProjectID: e.proj.ID, Roles: []identity.Role{e.memberRole}}
	start := time.Now()
	for _, c := range []struct {
		name string
		in   time.Duration // expires this long after start; 0 never
	}{{"forever", 0}, {"hour", time.Hour}, {"day", 24 * time.Hour}, {"week", 7 * 24 * time.Hour}} {
		req := identity.AppCredentialRequest{Name: c.name}
		if c.in > 0 {
			exp := start.Add(c.in)
			req.ExpiresAt = &exp
		}
		if _, _, err := creds.Create(ctx, alice, req); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name        string
		at          time.Duration // after start
		wantRemoved int
		wantLeft    string
	}{
		{"all live", time.Minute, 0, "day,forever,hour,week"},
		{"expired within retention", time.Hour + retention - time.Minute, 0, "day,forever,hour,week"},
		{"one past retention", time.Hour + retention + time.Minute, 1, "day,forever,week"},
		{"two past retention", 24*time.Hour + retention + time.Minute, 1, "forever,week"},
	}
	gc := identity.ExpiredAppCredentials{Creds: creds, Retention: retention}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := gc.Collect(ctx, start.Add(tc.at))
			if err != nil {
				t.Fatal(err)
			}
			list, err := creds.List(ctx, e.alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, ac := range list {
				left = append(left, ac.Name)
			}
			slices.Sort(left)
			if n != tc.wantRemoved || strings.Join(left, ",") != tc.wantLeft {
				t.Fatalf("removed %d, left %v; want %d, %s", n, left, tc.wantRemoved, tc.wantLeft)
			}
		})
	}
	// The name of a collected credential is free again.
	if _, _, err := creds.Create(ctx, alice, identity.AppCredentialRequest{Name: "hour"}); err != nil {
		t.Fatalf("reusing a collected credential's name: %v", err)
	}
}

// TestTokensCollect: the collector sweeps at the instant it is given.
func TestTokensCollect(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	if _, _, err := e.tokens.Issue(ctx, identity.Token{UserID: "u"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   time.Duration
		want int
	}{{"before expiry", 59 * time.Minute, 0}, {"after expiry", 61 * time.Minute, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := e.tokens.Collect(ctx, time.Now().Add(tc.at)); err != nil || n != tc.want {
				t.Fatalf("Collect = %d, %v; want %d", n, err, tc.want)
			}
		})
	}
}
