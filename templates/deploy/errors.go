package deploy

import "errors"

// Sentinel errors.
var (
	ErrNotFound = errors.New("deploy: deployment not found")
	// ErrBusy: another engine holds the deployment's lease, or it is
	// running here already.
	ErrBusy = errors.New("deploy: deployment is being worked on by another engine")
	// ErrState: the deployment's status does not allow the operation
	// (retrying a COMPLETE deployment).
	ErrState = errors.New("deploy: not allowed in the deployment's status")
	// ErrLeaseLost: the lease ended mid-run; the run stopped.
	ErrLeaseLost = errors.New("deploy: lease lost")
	// ErrInvalid: the template, parameters or plan are wrong.
	ErrInvalid = errors.New("deploy: invalid deployment")
	// ErrQuota: the plan's resources do not fit the project's quota; the
	// message names the resource and the numbers.
	ErrQuota = errors.New("deploy: over quota")
	// ErrPlacement: no peer may take a resource.
	ErrPlacement = errors.New("deploy: no peer may take the resource")
)
