package volume

import (
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
	// ErrExists: a volume type of that name, or a type access, exists
	// already; Cinder answers 409.
	ErrExists = fmt.Errorf("volume: already exists: %w", peers.ErrConflict)
	// ErrOverQuota: the create or extend would take the project over its
	// volumes or gigabytes quota. quota.Overs names the limits.
	ErrOverQuota = fmt.Errorf("volume: %w", quota.ErrOverQuota)
)

// Error is a refusal a user can act on: Message is what to show, Field
// the request attribute at fault (Cinder's names: "size", "name",
// "metadata", "imageRef", "availability_zone", "new_size"), empty when no
// one field is. It wraps a sentinel above, so errors.Is works; a quota
// refusal wraps the ledger's *quota.OverError too (Also), so quota.Overs
// finds the limits.
type Error = faults.Refusal[volumeRefusal]

// volumeRefusal tells the volume service's refusals from other services'.
type volumeRefusal struct{}

// The sentinels' texts are internal names: faults cuts them from what a
// tenant reads.
var _ = faults.Register(ErrNotFound, ErrInvalid, ErrConflict, ErrNoCapacity, ErrUnavailable, ErrOverQuota, ErrExists)

// FieldOf returns the field an Error names, or "".
func FieldOf(err error) string { return faults.FieldOf[volumeRefusal](err) }

func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

func notFound(id string) error {
	return &Error{Message: fmt.Sprintf("Volume %s could not be found.", id), Err: ErrNotFound}
}
