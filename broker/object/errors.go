package object

import (
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
)

// Sentinels of the object service. Each wraps the peers sentinel of the
// same meaning where there is one, so a front end that maps those maps
// these too.
var (
	// ErrNotFound: no such container or object in the account.
	ErrNotFound = fmt.Errorf("object: not found: %w", peers.ErrNotFound)
	// ErrForbidden: the caller may not act on this account (another
	// project's, or a write with a read-only role). It is said for every
	// path under the account, existing or not, so it tells nothing.
	ErrForbidden = errors.New("object: forbidden")
	// ErrInvalid: a malformed request (a name, metadata, a header value).
	ErrInvalid = fmt.Errorf("object: invalid request: %w", peers.ErrInvalid)
	// ErrNotEmpty: a container that still holds objects cannot be deleted.
	ErrNotEmpty = fmt.Errorf("object: container not empty: %w", peers.ErrConflict)
	// ErrETagMismatch: the uploaded bytes' MD5 is not the ETag the client
	// sent; nothing was stored.
	ErrETagMismatch = errors.New("object: the data does not match its ETag")
	// ErrOverQuota: the write would take a container or the account over
	// a quota set in its metadata.
	ErrOverQuota = errors.New("object: quota exceeded")
	// ErrTooLarge: an object over MaxObjectSize.
	ErrTooLarge = errors.New("object: object too large")
	// ErrRange: no requested byte range lies within the object.
	ErrRange = fmt.Errorf("object: %w", peers.ErrRangeNotSatisfiable)
	// ErrNoCapacity: no peer with object storage can take a new container,
	// or the container's peer is out of space.
	ErrNoCapacity = fmt.Errorf("object: no room: %w", peers.ErrCapacity)
	// ErrUnavailable: the peer holding the container is not connected or
	// did not answer.
	ErrUnavailable = fmt.Errorf("object: peer unavailable: %w", peers.ErrUnavailable)
	// ErrIncomplete: the client's body ended early or failed; nothing was
	// stored.
	ErrIncomplete = errors.New("object: the request body ended before its length")
	// ErrPrecondition: a container's setting the request depends on
	// cannot be honoured (a versions container that is missing or takes
	// no copy): Swift's 412.
	ErrPrecondition = errors.New("object: precondition failed")
)

// The sentinels' texts are internal names: faults cuts them from what a
// tenant reads.
var _ = faults.Register(ErrNotFound, ErrForbidden, ErrInvalid, ErrNotEmpty, ErrETagMismatch, ErrOverQuota,
	ErrTooLarge, ErrRange, ErrNoCapacity, ErrUnavailable, ErrIncomplete, ErrUnauthorized, ErrPrecondition)

// Error is a refusal a user can act on: Message is what to show. It
// wraps a sentinel above, so errors.Is works.
type Error struct {
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

// UserMessage is what a tenant reads (faults.Authored).
func (e *Error) UserMessage() string { return e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func invalid(format string, args ...any) error {
	return &Error{Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// peerErr turns a peer's error into the service's: the peer's own text
// (its names, its address) stays wrapped for the log, the sentinel says
// what happened.
func peerErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, peers.ErrNotFound):
		return fmt.Errorf("%s: %w (%w)", what, ErrNotFound, err)
	case errors.Is(err, peers.ErrRangeNotSatisfiable):
		return fmt.Errorf("%s: %w (%w)", what, ErrRange, err)
	case errors.Is(err, peers.ErrConflict):
		return fmt.Errorf("%s: %w (%w)", what, ErrNotEmpty, err)
	case errors.Is(err, peers.ErrCapacity):
		return fmt.Errorf("%s: %w (%w)", what, ErrNoCapacity, err)
	case errors.Is(err, peers.ErrInvalid):
		return fmt.Errorf("%s: %w (%w)", what, ErrInvalid, err)
	case errors.Is(err, peers.ErrUnavailable):
		return fmt.Errorf("%s: %w (%w)", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
