package identity

import (
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/faults"
)

// Sentinel errors; the HTTP layer maps them to Keystone's statuses.
var (
	ErrUnauthorized = errors.New("identity: the request you have made requires authentication")
	ErrForbidden    = errors.New("identity: you are not authorized to perform the requested action")
	ErrNotFound     = errors.New("identity: could not find")
	ErrConflict     = errors.New("identity: conflict")
	ErrInvalid      = errors.New("identity: invalid request")
	ErrThrottled    = errors.New("identity: too many requests")
)

// Their texts are Keystone's words without the "identity: " prefix.
var _ = faults.RegisterWords("identity: ", ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrInvalid, ErrThrottled)

// errDefaultDomain: the default domain holds the cloud admin; disabling
// it would lock every admin out.
var errDefaultDomain = fmt.Errorf("%w: the default domain may not be disabled", ErrForbidden)

// errBuiltinRole: admin, member and reader are named by the broker's own
// authorization (every service's policy); deleting one would break it.
var errBuiltinRole = fmt.Errorf("%w: the roles admin, member and reader may not be deleted or renamed", ErrForbidden)

func errForbiddenf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrForbidden, fmt.Sprintf(format, args...))
}

func errNotFoundf(format string, args ...any) error {
	return fmt.Errorf("%w %s", ErrNotFound, fmt.Sprintf(format, args...))
}

// ignoreErr is err unless it is target.
func ignoreErr(err, target error) error {
	if errors.Is(err, target) {
		return nil
	}
	return err
}
