package faults

import "errors"

// Refusal is an error a service writes for a user who can act on it:
// Message is what to show (the API's wording), Field the request
// attribute at fault under the API's own name, empty when no one field
// is. It wraps Err, the service's sentinel, so errors.Is works, and Also
// beside it when set (a quota ledger's refusal, so quota.Overs finds the
// limits).
//
// S tells one service's refusals from another's: compute.Error and
// volume.Error are Refusals of their own S, so errors.As and FieldOf find
// only the service's own refusal, never one it passes through from a
// service it called.
type Refusal[S any] struct {
	Field   string
	Message string
	Err     error
	Also    error
}

func (e *Refusal[S]) Error() string { return e.Message }

// UserMessage is what a tenant reads (Authored).
func (e *Refusal[S]) UserMessage() string { return e.Message }

// Unwrap returns the sentinel, and Also when set.
func (e *Refusal[S]) Unwrap() []error {
	if e.Also != nil {
		return []error{e.Err, e.Also}
	}
	return []error{e.Err}
}

// FieldOf returns the field err's Refusal of kind S names, or "".
func FieldOf[S any](err error) string {
	var e *Refusal[S]
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
