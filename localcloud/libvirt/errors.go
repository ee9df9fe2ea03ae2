package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/peers"
)

// mapError translates an error from libvirt into the peers sentinels,
// keeping the cause: a missing domain, volume, pool or network is
// ErrNotFound; an existing one ErrConflict, as is an operation the object's
// state does not allow (start a running domain); a lost or refused
// connection ErrUnavailable; a rejected argument or XML ErrInvalid; an
// unsupported call ErrNotSupported. Context errors pass through.
func mapError(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("libvirt: %s: %w", what, err)
	}
	if s := sentinel(err); s != nil {
		return fmt.Errorf("libvirt: %s: %w: %w", what, s, err)
	}
	return fmt.Errorf("libvirt: %s: %w", what, err)
}

// libvirtCode returns the libvirt error number in err, if there is one.
func libvirtCode(err error) (golibvirt.ErrorNumber, bool) {
	var le golibvirt.Error
	if errors.As(err, &le) {
		return golibvirt.ErrorNumber(le.Code), true
	}
	var lp *golibvirt.Error
	if errors.As(err, &lp) && lp != nil {
		return golibvirt.ErrorNumber(lp.Code), true
	}
	return 0, false
}

func isCode(err error, codes ...golibvirt.ErrorNumber) bool {
	c, ok := libvirtCode(err)
	if !ok {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// sentinel is the peers sentinel err maps to, or nil.
func sentinel(err error) error {
	if code, ok := libvirtCode(err); ok {
		switch code {
		case golibvirt.ErrNoDomain, golibvirt.ErrNoStorageVol, golibvirt.ErrNoStoragePool, golibvirt.ErrNoNetwork,
			golibvirt.ErrNoDomainMetadata, golibvirt.ErrNoNwfilter:
			return peers.ErrNotFound
		case golibvirt.ErrDomExist, golibvirt.ErrNetworkExist, golibvirt.ErrStorageVolExist, golibvirt.ErrOperationInvalid,
			golibvirt.ErrResourceBusy, golibvirt.ErrStoragePoolBuilt:
			return peers.ErrConflict
		case golibvirt.ErrNoConnect, golibvirt.ErrInvalidConn, golibvirt.ErrRPC, golibvirt.ErrOperationTimeout,
			golibvirt.ErrAgentUnresponsive:
			return peers.ErrUnavailable
		case golibvirt.ErrInvalidArg, golibvirt.ErrXMLError, golibvirt.ErrConfigUnsupported:
			return peers.ErrInvalid
		case golibvirt.ErrNoSupport, golibvirt.ErrOperationUnsupported:
			return peers.ErrNotSupported
		}
		return nil
	}
	var ne net.Error
	switch {
	case errors.Is(err, golibvirt.ErrInterrupted), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EINVAL),
		errors.As(err, &ne):
		return peers.ErrUnavailable
	}
	return nil
}
