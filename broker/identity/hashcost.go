package identity

import (
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Option configures a Directory at NewDirectory.
type Option func(*Directory)

// WithHashCost makes the directory hash new passwords and application
// credential secrets at bcrypt cost cost (bcrypt.MinCost up) instead of
// bcrypt.DefaultCost, and check a failed lookup against a dummy hash of
// that cost.
//
// It is for tests only; production (cmd/cloudmux) never sets it. Under
// the race detector one hash at the default cost takes seconds of CPU
// (~6 s on a loaded 2-core machine, against ~0.1 s at bcrypt.MinCost), and
// every password login, user creation and password change pays it: most
// of a test package's time. Hashes already stored keep the cost they were
// made with (bcrypt reads it from the hash), so a directory with this
// option still checks default-cost hashes right; TestDefaultHashCost holds
// a directory without it to the production cost.
func WithHashCost(cost int) Option {
	return func(d *Directory) { d.hashCost = cost }
}

// passwordHasher is the part of a Directory that makes bcrypt hashes.
type passwordHasher struct {
	// hashCost is the bcrypt cost of new hashes; 0 is bcrypt.DefaultCost.
	hashCost  int
	dummyOnce sync.Once
	dummy     []byte
}

// hash returns the bcrypt hash of secret at the directory's cost.
func (h *passwordHasher) hash(secret []byte) ([]byte, error) {
	cost := h.hashCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	return bcrypt.GenerateFromPassword(secret, cost)
}

// dummyHash is the hash a failed lookup (no such user or credential, a
// locked user) is checked against, so that it takes as long as a failed
// password check and timing does not tell which names exist. It is made
// at the directory's cost on first use: made at package init, as it once
// was, it cost every binary importing identity a default-cost hash at
// start (seconds under the race detector, in every test binary).
func (h *passwordHasher) dummyHash() []byte {
	h.dummyOnce.Do(func() {
		h.dummy, _ = h.hash([]byte("cloudmux-identity-dummy"))
	})
	return h.dummy
}
