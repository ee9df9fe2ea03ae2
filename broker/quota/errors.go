package quota

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/broker/faults"
)

var (
	// ErrOverQuota: the request would take the project over a limit.
	// *OverError, which wraps it, says which and by how much.
	ErrOverQuota = errors.New("quota exceeded")
	// ErrInvalid: a limit or a resource name the ledger does not take.
	ErrInvalid = errors.New("invalid quota")
	// ErrReservationGone: the reservation was committed, released, or
	// dropped after it expired.
	ErrReservationGone = errors.New("quota reservation is gone")
)

// Their texts are words a user reads: faults lets them through.
var _ = faults.RegisterWords("", ErrOverQuota, ErrInvalid)

// Over is one limit a request would exceed.
type Over struct {
	Resource Resource
	// Requested is what the request asks; Used what the project already
	// uses and has reserved; Limit its quota.
	Requested, Used, Limit int
}

// OverError is a refused reservation. Its message is Nova's
// ("Quota exceeded for instances: Requested 1, but already used 2 of 2
// instances"), which every front end can show as it is.
type OverError struct {
	Project string
	Over    []Over
}

func (e *OverError) Error() string {
	names := make([]string, len(e.Over))
	var req, used, lim []string
	for i, o := range e.Over {
		names[i] = string(o.Resource)
		req = append(req, fmt.Sprint(o.Requested))
		used = append(used, fmt.Sprint(o.Used))
		lim = append(lim, fmt.Sprint(o.Limit))
	}
	n := strings.Join(names, ", ")
	return fmt.Sprintf("Quota exceeded for %s: Requested %s, but already used %s of %s %s",
		n, strings.Join(req, ", "), strings.Join(used, ", "), strings.Join(lim, ", "), n)
}

// UserMessage is what a tenant reads (faults.Authored): Nova's words.
func (e *OverError) UserMessage() string { return e.Error() }

// Unwrap makes errors.Is(err, ErrOverQuota) hold.
func (e *OverError) Unwrap() error { return ErrOverQuota }

// Overs returns the limits err says were exceeded, if it is a refusal.
func Overs(err error) ([]Over, bool) {
	var oe *OverError
	if errors.As(err, &oe) {
		return oe.Over, true
	}
	return nil, false
}
