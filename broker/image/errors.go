package image

import (
	"errors"

	"github.com/cloudmux/cloudmux/broker/faults"
)

// Sentinel errors of the image service. Errors from peers keep their
// peers sentinels (peers.ErrNotFound, ErrConflict, ErrCapacity, ...) and
// are wrapped, so callers test both with errors.Is.
var (
	// ErrNotFound: no image with this ID that the caller may see.
	ErrNotFound = errors.New("image: not found")
	// ErrForbidden: the caller sees the image but may not do this to it
	// (modify another project's public image, delete a protected one,
	// download a deactivated one, set a read-only attribute).
	ErrForbidden = errors.New("image: forbidden")
	// ErrInvalid: a malformed request; the message names the field.
	ErrInvalid = errors.New("image: invalid request")
	// ErrConflict: the image's state does not allow this (upload to an
	// image that is not queued, an ID already taken).
	ErrConflict = errors.New("image: conflict with the image's state")
	// ErrTooLarge: the data exceeds the image size cap or a quota.
	ErrTooLarge = errors.New("image: too large")
	// ErrUnavailable: the peer holding the image is not connected or did
	// not answer in time.
	ErrUnavailable = errors.New("image: peer unavailable")
	// ErrNoPeer: no peer of the pool may hold a new image; the message
	// gives every peer's reason.
	ErrNoPeer = errors.New("image: no peer can hold the image")
)

// The sentinels' texts are internal names: faults cuts them from what a
// tenant reads.
var _ = faults.Register(ErrNotFound, ErrForbidden, ErrInvalid, ErrConflict, ErrTooLarge, ErrUnavailable, ErrNoPeer)
