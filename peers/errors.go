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
	// ErrRangeNotSatisfiable is a byte range past an object's end (416).
	ErrRangeNotSatisfiable = errors.New("peers: range not satisfiable")
)

// PeerError marks an error with the peer it came from, for the broker's
// log; its text and errors.Is are its cause's alone.
type PeerError struct {
	Peer string
	Err  error
}

func (e *PeerError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PeerError) Unwrap() error { return e.Err }

// AtPeer marks err as coming from peer (nil stays nil).
func AtPeer(peer string, err error) error {
	if err == nil || peer == "" {
		return err
	}
	return &PeerError{Peer: peer, Err: err}
}
