package focus

import "errors"

// Sentinel errors; wrapped with the name and version concerned.
var (
	ErrNotFound = errors.New("focus: not found")
	ErrInvalid  = errors.New("focus: invalid")
	// ErrInUse: a version cannot go while something uses it.
	ErrInUse = errors.New("focus: in use")
)
