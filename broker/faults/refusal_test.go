package faults_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/cloudmux/cloudmux/broker/faults"
)

type (
	refusedHere  struct{}
	refusedThere struct{}
)

// TestRefusal: a Refusal says its Message to the tenant, wraps its
// sentinel (and Also), and FieldOf finds only a Refusal of its own kind,
// even when one of another kind is in the chain.
func TestRefusal(t *testing.T) {
	errAlso := errors.New("also wrapped")
	here := &faults.Refusal[refusedHere]{Field: "name", Message: "Name is too long.", Err: errThing}
	there := &faults.Refusal[refusedThere]{Field: "size", Message: "Size is too big.", Err: errThing, Also: errAlso}
	tests := []struct {
		name      string
		err       error
		field     string // FieldOf[refusedHere]
		isAlso    bool
		wantTold  string
		wantOwnOK bool
	}{
		{name: "own kind", err: here, field: "name", wantTold: "Name is too long.", wantOwnOK: true},
		{name: "own kind, wrapped", err: fmt.Errorf("creating: %w", here), field: "name", wantTold: "creating: Name is too long.", wantOwnOK: true},
		{name: "another kind passed through", err: there, field: "", isAlso: true, wantTold: "Size is too big.", wantOwnOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := faults.FieldOf[refusedHere](tc.err); got != tc.field {
				t.Errorf("FieldOf = %q, want %q", got, tc.field)
			}
			if !errors.Is(tc.err, errThing) {
				t.Error("the sentinel is not in the chain")
			}
			if got := errors.Is(tc.err, errAlso); got != tc.isAlso {
				t.Errorf("errors.Is(Also) = %v, want %v", got, tc.isAlso)
			}
			msg, ok := faults.Message(tc.err, http.StatusBadRequest)
			if msg != tc.wantTold || ok != tc.wantOwnOK {
				t.Errorf("Message = %q, %v; want %q, %v", msg, ok, tc.wantTold, tc.wantOwnOK)
			}
		})
	}
}
