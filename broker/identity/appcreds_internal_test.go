package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/registry"
)

// TestAppCredentialSecretsAndExpiry runs on a directory whose clock the
// test moves: a credential works until its expiry and not from then on;
// the store holds a hash, never the secret; every byte of a long secret
// counts (bcrypt alone would read 72).
func TestAppCredentialSecretsAndExpiry(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	d := NewDirectory(store, WithHashCost(bcrypt.MinCost))
	clock := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return clock }
	boot, err := d.Bootstrap(ctx, "admin-secret-pw", false)
	if err != nil {
		t.Fatal(err)
	}
	u, err := d.CreateUser(ctx, User{Name: "dora", DomainID: DefaultDomainID, Enabled: true}, "dora-password")
	if err != nil {
		t.Fatal(err)
	}
	member := boot.Roles[RoleMember]
	if err := d.Grant(ctx, Assignment{UserID: u.ID, ProjectID: boot.Project.ID, RoleID: member.ID}); err != nil {
		t.Fatal(err)
	}
	creator := Token{UserID: u.ID, ProjectID: boot.Project.ID, Roles: []Role{member}}
	svc := NewAppCredentials(d)
	expires := clock.Add(time.Hour)
	long := strings.Repeat("s", 100) + "-tail"
	ac, secret, err := svc.Create(ctx, creator, AppCredentialRequest{Name: "nightly", Secret: long, ExpiresAt: &expires})
	if err != nil {
		t.Fatal(err)
	}
	if secret != long || ac.SecretHash != "" {
		t.Fatalf("create gave secret %q, hash %q", secret, ac.SecretHash)
	}
	kv, err := store.Get(ctx, appCredsPrefix+ac.ID)
	if err != nil || strings.Contains(string(kv.Value), "sssss") || !strings.Contains(string(kv.Value), `"secret_bcrypt":"$2`) {
		t.Fatalf("stored record %s, %v: want a bcrypt hash and no secret", kv.Value, err)
	}

	cases := []struct {
		name    string
		at      time.Time
		secret  string
		wantErr error
	}{
		{"right secret, before expiry", clock, long, nil},
		{"only the tail differs", clock, strings.Repeat("s", 100) + "-TAIL", ErrUnauthorized},
		{"a moment before expiry", expires.Add(-time.Microsecond), long, nil},
		{"at expiry", expires, long, ErrUnauthorized},
		{"after expiry", expires.Add(time.Hour), long, ErrUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock = c.at
			got, err := svc.Authenticate(ctx, ac.ID, "", "", c.secret)
			if !errors.Is(err, c.wantErr) || (err == nil && got.ID != ac.ID) {
				t.Fatalf("Authenticate = %+v, %v; want %v", got, err, c.wantErr)
			}
			byName, err := svc.Authenticate(ctx, "", u.ID, "NIGHTLY", c.secret)
			if !errors.Is(err, c.wantErr) || (err == nil && byName.ID != ac.ID) {
				t.Fatalf("Authenticate by name = %+v, %v; want %v", byName, err, c.wantErr)
			}
		})
	}
}

// BenchmarkAppCredentialAuthenticate measures checking a credential's
// secret (bcrypt at the default cost dominates, as for passwords).
func BenchmarkAppCredentialAuthenticate(b *testing.B) {
	ctx := context.Background()
	d := NewDirectory(registry.NewMemory())
	boot, err := d.Bootstrap(ctx, "admin-secret-pw", false)
	if err != nil {
		b.Fatal(err)
	}
	creator := Token{UserID: boot.User.ID, ProjectID: boot.Project.ID, Roles: []Role{boot.Roles[RoleAdmin]}}
	ac, secret, err := NewAppCredentials(d).Create(ctx, creator, AppCredentialRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	svc := NewAppCredentials(d)
	b.ResetTimer()
	for b.Loop() {
		if _, err := svc.Authenticate(ctx, ac.ID, "", "", secret); err != nil {
			b.Fatal(err)
		}
	}
}
