package identity

import "time"

// RevocationStaleBound is how long the revocation watch may lag before
// Validate stops trusting its cache: the bound tests hold propagation to.
const RevocationStaleBound = watchStaleAfter

// SetClock makes d read time from now (password expiry, lockouts).
func SetClock(d *Directory, now func() time.Time) { d.now = now }
