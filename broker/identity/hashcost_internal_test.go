package identity

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/registry"
)

// TestDefaultHashCost runs the production cost (the other tests hash at
// bcrypt.MinCost through WithHashCost): a directory without the option
// stores passwords and application credential secrets at
// bcrypt.DefaultCost, a password of that cost logs in, and its failed
// lookups check a dummy hash of the same cost; a directory with it makes hashes (the
// dummy's too) of its cost.
func TestDefaultHashCost(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	d := NewDirectory(store)
	boot, err := d.Bootstrap(ctx, "admin-secret-pw", false)
	if err != nil {
		t.Fatal(err)
	}
	ac, _, err := NewAppCredentials(d).Create(ctx,
		Token{UserID: boot.User.ID, ProjectID: boot.Project.ID, Roles: []Role{boot.Roles[RoleAdmin]}},
		AppCredentialRequest{Name: "prod-cost"})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := getJSON[User](ctx, store, usersPrefix+boot.User.ID, "user", boot.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	storedAC, err := getJSON[AppCredential](ctx, store, appCredsPrefix+ac.ID, "application credential", ac.ID)
	if err != nil {
		t.Fatal(err)
	}
	cheap := NewDirectory(store, WithHashCost(bcrypt.MinCost))
	cheapHash, err := cheap.hash([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}

	costs := []struct {
		name string
		hash []byte
		want int
	}{
		{"a password", []byte(stored.PasswordHash), bcrypt.DefaultCost},
		{"an application credential secret", []byte(storedAC.SecretHash), bcrypt.DefaultCost},
		{"the dummy hash of a failed lookup", d.dummyHash(), bcrypt.DefaultCost},
		{"a hash under WithHashCost", cheapHash, bcrypt.MinCost},
		{"the dummy hash under WithHashCost", cheap.dummyHash(), bcrypt.MinCost},
	}
	for _, c := range costs {
		t.Run(c.name, func(t *testing.T) {
			if got, err := bcrypt.Cost(c.hash); err != nil || got != c.want {
				t.Fatalf("cost = %d, %v; want %d", got, err, c.want)
			}
		})
	}

	// Each default-cost hash or check is seconds under the race detector:
	// one login shows a default-cost hash checks; wrong passwords, missing
	// users and application credential logins are the other tests' (the
	// same code at bcrypt.MinCost).
	if u, err := d.CheckPassword(ctx, User{ID: boot.User.ID}, "admin-secret-pw"); err != nil || u.ID != boot.User.ID {
		t.Fatalf("CheckPassword = %+v, %v; want the admin", u, err)
	}
}
