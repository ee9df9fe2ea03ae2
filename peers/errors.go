package peers

import "errors"

// Sentinel errors. Drivers translate at their boundary (a gophercloud 404
// becomes ErrNotFound, a libvirt "no domain" too) and wrap with %w so the
// message keeps the resource and the cause. The broker maps them to HTTP
// statuses: 404, 409, 413/403, 503, 400, 501, 401.
var (
	ErrNotFound     = errors.New("peers: resource not found")
	ErrConflict     = errors.New("peers: conflict with the resource's current state")
	ErrCapacity     = errors.New("peers: not enough capacity or quota")
	ErrUnavailable  = errors.New("peers: cloud unavailable")
	ErrInvalid      = errors.New("peers: invalid request")
	ErrNotSupported = errors.New("peers: not supported by this cloud")
	ErrUnauthorized = errors.New("peers: cloud refused the credentials")
)
