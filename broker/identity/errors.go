package identity

import (
	"errors"

	"github.com/cloudmux/cloudmux/broker/faults"
)

// Sentinel errors; the HTTP layer maps them to Keystone's statuses.
var (
	ErrUnauthorized = errors.New("identity: the request you have made requires authentication")
	ErrForbidden    = errors.New("identity: you are not authorized to perform the requested action")
	ErrNotFound     = errors.New("identity: could not find")
	ErrConflict     = errors.New("identity: conflict")
	ErrInvalid      = errors.New("identity: invalid request")
)

// Their texts are Keystone's words without the "identity: " prefix.
var _ = faults.RegisterWords("identity: ", ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrInvalid)
