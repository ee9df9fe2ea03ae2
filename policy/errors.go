package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the policy package. Callers translate them at their boundary:
// ErrInvalid and ErrCompile are the uploader's fault (400), ErrNotFound a
// missing version (404), ErrEvaluation a policy that failed at decision
// time (placement fails closed: nothing is placed).
var (
	ErrInvalid     = errors.New("policy: invalid")
	ErrCompile     = errors.New("policy: does not compile")
	ErrTestsFailed = errors.New("policy: tests fail")
	ErrNotFound    = errors.New("policy: not found")
	ErrEvaluation  = errors.New("policy: evaluation failed")
	ErrNoRollback  = errors.New("policy: no earlier version to roll back to")
)

// Position is one problem in an uploaded file, as the Rego parser or
// compiler located it.
type Position struct {
	File    string `json:"file"`
	Row     int    `json:"row"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

func (p Position) String() string {
	if p.File == "" {
		return p.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Row, p.Col, p.Message)
}

// CompileError lists every problem of a policy that does not compile (or
// whose tests fail). It matches ErrCompile or ErrTestsFailed with errors.Is.
type CompileError struct {
	Kind      error // ErrCompile or ErrTestsFailed
	Positions []Position
}

func (e *CompileError) Error() string {
	parts := make([]string, len(e.Positions))
	for i, p := range e.Positions {
		parts[i] = p.String()
	}
	return e.Kind.Error() + ": " + strings.Join(parts, "; ")
}

// Is reports the kind.
func (e *CompileError) Is(target error) bool { return target == e.Kind }

// Positions returns the positions carried by err, if it is (or wraps) a
// CompileError.
func Positions(err error) []Position {
	var ce *CompileError
	if errors.As(err, &ce) {
		return ce.Positions
	}
	return nil
}
