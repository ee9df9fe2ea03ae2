package network

import (
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
)

// Sentinels. Each wraps the peers sentinel of the same meaning, so a
// caller that maps peers errors (the compute API) maps these too.
var (
	// ErrNotFound: no such resource, or one the project may not see.
	ErrNotFound = fmt.Errorf("network: resource not found: %w", peers.ErrNotFound)
	// ErrInUse: the resource has dependents (ports on a network, addresses
	// on a subnet) or the address asked for is taken.
	ErrInUse = fmt.Errorf("network: resource in use: %w", peers.ErrConflict)
	// ErrInvalid: the request is malformed or contradicts itself.
	ErrInvalid = fmt.Errorf("network: invalid request: %w", peers.ErrInvalid)
	// ErrForbidden: the project may see the resource but not change it (a
	// shared network of another project, a peer's own network).
	ErrForbidden = errors.New("network: not allowed by policy")
	// ErrNoPeer: placement found no connected peer allowed to hold it.
	ErrNoPeer = fmt.Errorf("network: no peer can hold the resource: %w", peers.ErrCapacity)
)

// Error is a Neutron fault: the HTTP status, Neutron's exception name
// (NetworkNotFound, NetworkInUse, InvalidInput...), and Neutron's message.
// It wraps one of the sentinels above, so errors.Is works on it.
type Error struct {
	Status  int
	Type    string
	Message string
	Err     error
}

func (e *Error) Error() string { return e.Message }

// UserMessage is what a tenant reads (faults.Authored).
func (e *Error) UserMessage() string { return e.Message }

// The sentinels' texts are internal names: faults cuts them from what a
// tenant reads.
var _ = faults.Register(ErrNotFound, ErrInUse, ErrInvalid, ErrForbidden, ErrNoPeer)

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// kindNames are the capitalised kinds Neutron's exception names use.
var kindNames = map[string]string{
	KindNetwork: "Network", KindSubnet: "Subnet", KindPort: "Port",
	kindSecurityGroup: "SecurityGroup", kindSecurityGroupRule: "SecurityGroupRule",
	KindRouter: "Router", KindFloatingIP: "FloatingIP",
}

// notFound is Neutron's NetworkNotFound, SubnetNotFound, PortNotFound...
func notFound(kind, id string) error {
	msg := fmt.Sprintf("%s %s could not be found.", kindNames[kind], id)
	switch kind {
	case kindSecurityGroup:
		msg = fmt.Sprintf("Security group %s does not exist", id)
	case kindSecurityGroupRule:
		msg = fmt.Sprintf("Security group rule %s does not exist", id)
	case KindRouter:
		msg = fmt.Sprintf("Router %s could not be found", id)
	case KindFloatingIP:
		msg = fmt.Sprintf("Floating IP %s could not be found", id)
	}
	return &Error{Status: 404, Type: kindNames[kind] + "NotFound", Message: msg, Err: ErrNotFound}
}

// badInput is Neutron's answer to an attribute that fails validation.
func badInput(field, reason string) error {
	return &Error{Status: 400, Type: "HTTPBadRequest", Message: fmt.Sprintf("Invalid input for %s. Reason: %s.", field, reason), Err: ErrInvalid}
}

// invalidInput is Neutron's InvalidInput, for a request valid field by
// field that cannot be honoured as a whole.
func invalidInput(format string, args ...any) error {
	return &Error{Status: 400, Type: "InvalidInput", Message: "Invalid input for operation: " + fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// forbidden is Neutron's PolicyNotAuthorized.
func forbidden(action string) error {
	return &Error{Status: 403, Type: "PolicyNotAuthorized", Message: fmt.Sprintf("(rule:%s) is disallowed by policy", action), Err: ErrForbidden}
}

// inUse is a 409 of the given Neutron type.
func inUse(typ, format string, args ...any) error {
	return &Error{Status: 409, Type: typ, Message: fmt.Sprintf(format, args...), Err: ErrInUse}
}
