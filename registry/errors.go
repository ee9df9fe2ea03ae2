package registry

import "errors"

// Sentinel errors of the Store contract. Backends wrap them with %w so callers
// can test with errors.Is while the message keeps the key and the cause.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("registry: key not found")
	// ErrConflict: a compare-and-swap lost (the modify index moved on, or a
	// create-only write found the key already there).
	ErrConflict = errors.New("registry: compare-and-swap conflict")
	// ErrInvalidKey: the key is empty, starts with '/', or holds a character
	// the backends do not agree on.
	ErrInvalidKey = errors.New("registry: invalid key")
	// ErrValueTooLarge: the value is larger than MaxValueSize.
	ErrValueTooLarge = errors.New("registry: value too large")
	// ErrLockHeld: another holder owns the lock.
	ErrLockHeld = errors.New("registry: lock held by another holder")
	// ErrLeaseLost: the lease behind a lock expired or was invalidated.
	ErrLeaseLost = errors.New("registry: lease lost")
	// ErrChangesGone: a ChangeWatcher cannot say what changed after the
	// index asked (it no longer remembers that far back, or the index is
	// ahead of the store); the caller lists the prefix instead.
	ErrChangesGone = errors.New("registry: changes no longer known")
	// ErrUnavailable: the backend cannot be reached; the caller may retry.
	ErrUnavailable = errors.New("registry: backend unavailable")
	// ErrInvalid: a record failed validation; the wrapped error lists every
	// problem (see FieldError).
	ErrInvalid = errors.New("registry: invalid record")
	// ErrDuplicateName: a peer with that name already exists.
	ErrDuplicateName = errors.New("registry: duplicate name")
)

// FieldError names one bad field of a record and says why it is bad.
// Validate methods return every FieldError at once through errors.Join.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// UserMessage is what a user reads: the field and why (the broker's
// faults.Authored).
func (e *FieldError) UserMessage() string { return e.Error() }

// Is lets errors.Is(err, ErrInvalid) match a joined list of field errors.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// FieldErrors flattens err (joined or wrapped) into its FieldErrors, in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if fe, ok := e.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch x := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	return out
}
