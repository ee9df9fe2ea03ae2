package compute

import (
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
)

// Sentinels of the servers service. Each wraps the peers sentinel of the
// same meaning, so a caller that maps peers errors to statuses (Nova's
// writeError, the EC2 API) maps these too.
var (
	// ErrNotFound: no server with this ID in the caller's project (others'
	// IDs are not found either, so nothing leaks).
	ErrNotFound = fmt.Errorf("compute: not found: %w", peers.ErrNotFound)
	// ErrInvalid: a malformed request or a reference (flavor, image,
	// network, port, volume, keypair, zone) that does not resolve; Nova
	// answers 400 for both.
	ErrInvalid = fmt.Errorf("compute: invalid request: %w", peers.ErrInvalid)
	// ErrConflict: the server's state does not allow this (start an ACTIVE
	// server, attach a volume that is in use).
	ErrConflict = fmt.Errorf("compute: conflict with the server's state: %w", peers.ErrConflict)
	// ErrNoValidHost: no peer may hold the server; the message gives every
	// peer's reason (Nova's "No valid host was found").
	ErrNoValidHost = fmt.Errorf("compute: no valid host was found: %w", peers.ErrCapacity)
	// ErrForbidden: the caller may not do this (list every project's
	// servers without being a cloud admin).
	ErrForbidden = errors.New("compute: forbidden")
	// ErrUnavailable: the peer holding the server is not connected or did
	// not answer.
	ErrUnavailable = fmt.Errorf("compute: peer unavailable: %w", peers.ErrUnavailable)
)

// Error is a refusal a user can act on: Message is what to show (Nova's
// wording where Nova has one), Field the request attribute at fault (the
// Nova name: "flavorRef", "imageRef", "networks", "key_name", "user_data",
// "block_device_mapping_v2", "availability_zone", "metadata", "name",
// "min_count", "volumeId", "action", "limit", "marker"), empty when no one
// field is. It wraps a sentinel above, so errors.Is works; the EC2 API
// maps Field to its own error codes.
type Error = faults.Refusal[computeRefusal]

// computeRefusal tells the servers service's refusals from those of the
// services it calls (a volume's, passed through, is not an Error).
type computeRefusal struct{}

// The sentinels' texts are internal names: faults cuts them from what a
// tenant reads.
var _ = faults.Register(ErrNotFound, ErrInvalid, ErrConflict, ErrNoValidHost, ErrForbidden, ErrUnavailable, ErrQuotaExceeded)

// FieldOf returns the field an Error names, or "".
func FieldOf(err error) string { return faults.FieldOf[computeRefusal](err) }

// invalid is an ErrInvalid naming field.
func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// notFound is the answer for a server ID the project does not have.
func notFound(id string) error {
	return &Error{Message: fmt.Sprintf("Instance %s could not be found.", id), Err: ErrNotFound}
}
