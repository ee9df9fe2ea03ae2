package volume

import (
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
)

// Sentinels of the volume service. Each wraps the peers (or quota)
// sentinel of the same meaning, so a front end that maps those to its own
// statuses maps these too.
var (
	// ErrNotFound: no volume with this ID in the caller's project. Other
	// projects' IDs and peers' raw IDs are not found either, so nothing
	// leaks.
	ErrNotFound = fmt.Errorf("volume: not found: %w", peers.ErrNotFound)
	// ErrInvalid: a malformed request, or a reference (image, zone) that
	// does not resolve; Cinder answers 400.
	ErrInvalid = fmt.Errorf("volume: invalid request: %w", peers.ErrInvalid)
	// ErrConflict: the volume's state does not allow this (delete an
	// attached volume, extend one that is busy).
	ErrConflict = fmt.Errorf("volume: conflict with the volume's state: %w", peers.ErrConflict)
	// ErrNoCapacity: no allowed peer could hold the volume; the message
	// gives every peer's reason.
	ErrNoCapacity = fmt.Errorf("volume: no peer can hold the volume: %w", peers.ErrCapacity)
	// ErrUnavailable: the peer holding the volume is not connected or did
	// not answer.
	ErrUnavailable = fmt.Errorf("volume: peer unavailable: %w", peers.ErrUnavailable)
	// ErrOverQuota: the create or extend would take the project over its
	// volumes or gigabytes quota. quota.Overs names the limits.
	ErrOverQuota = fmt.Errorf("volume: %w", quota.ErrOverQuota)
)

// Error is a refusal a user can act on: Message is what to show, Field
// the request attribute at fault (Cinder's names: "size", "name",
// "metadata", "imageRef", "availability_zone", "new_size"), empty when no
// one field is. It wraps a sentinel above, so errors.Is works.
type Error struct {
	Field   string
	Message string
	Err     error
	// over is the ledger's refusal, for a quota error.
	over error
}

func (e *Error) Error() string { return e.Message }

// UserMessage is what a tenant reads (faults.Authored).
func (e *Error) UserMessage() string { return e.Message }

// The sentinels' texts are internal names: faults cuts them from what a
// tenant reads.
var _ = faults.Register(ErrNotFound, ErrInvalid, ErrConflict, ErrNoCapacity, ErrUnavailable, ErrOverQuota)

// Unwrap returns the sentinel (and, for a quota refusal, the ledger's
// *quota.OverError, so quota.Overs finds the limits).
func (e *Error) Unwrap() []error {
	if e.over != nil {
		return []error{e.Err, e.over}
	}
	return []error{e.Err}
}

// FieldOf returns the field an error names, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

func notFound(id string) error {
	return &Error{Message: fmt.Sprintf("Volume %s could not be found.", id), Err: ErrNotFound}
}
