package libvirt

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// hostConn is the one connection to one host's libvirtd. It dials lazily
// and redials on the first call after the connection dropped (libvirtd
// restarted, the network blinked): go-libvirt closes Disconnected() then.
type hostConn struct {
	name   string
	uri    string
	test   bool // the test:// driver: no storage data path
	local  bool // reached through this machine's socket: its files are ours to read
	dial   DialFunc
	dialTO time.Duration
	log    logrus.FieldLogger

	mu     sync.Mutex
	api    API
	dials  int // connections opened so far; a connection's generation
	closed bool

	poolMu  sync.Mutex
	pool    *golibvirt.StoragePool // known to exist and run on this host...
	poolGen int                    // ...as of this connection
}

// generation is the number of the current connection (0 before the
// first): what was checked on one connection is checked again on the next,
// since the daemon may have restarted (and test:// lost everything).
func (h *hostConn) generation() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dials
}

func newHostConn(name, uri string, dial DialFunc, dialTO time.Duration, log logrus.FieldLogger) (*hostConn, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("host %s: libvirt URI %q is not a URI: %w", name, uri, peers.ErrInvalid)
	}
	_, transport, _ := strings.Cut(u.Scheme, "+")
	local := u.Host == "" && (transport == "" || transport == "unix")
	return &hostConn{name: name, uri: uri, test: u.Scheme == "test", local: local, dial: dial, dialTO: dialTO, log: log}, nil
}

// get returns a live connection, dialling if there is none. Dial failures
// are ErrUnavailable.
func (h *hostConn) get(ctx context.Context) (API, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("libvirt: host %s: driver closed: %w", h.name, peers.ErrUnavailable)
	}
	if h.api != nil {
		select {
		case <-h.api.Disconnected():
			h.log.WithField("host", h.name).Warn("libvirt connection lost; redialling")
			h.api = nil
		default:
			return h.api, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, h.dialTO)
	defer cancel()
	api, err := h.dial(dctx, h.uri)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("libvirt: host %s: connecting to %s: %w: %w", h.name, h.uri, peers.ErrUnavailable, err)
	}
	h.api = api
	h.dials++
	h.log.WithFields(logrus.Fields{"host": h.name, "uri": h.uri, "dials": h.dials}).Info("libvirt connected")
	return api, nil
}

// drop forgets api if it is still the current connection and closes it in
// the background: a call on it hung past its deadline.
func (h *hostConn) drop(api API) {
	h.mu.Lock()
	if h.api == api {
		h.api = nil
	}
	h.mu.Unlock()
	go closeAPI(api)
}

func (h *hostConn) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.api == nil {
		return nil
	}
	api := h.api
	h.api = nil
	select {
	case <-api.Disconnected():
		return nil
	default:
	}
	return api.Disconnect()
}

// call runs fn on h's connection. go-libvirt calls take no context, so fn
// runs in its own goroutine and call returns when ctx ends or timeout
// passes (0: only ctx bounds it). A call that outlives its timeout means
// libvirtd stopped answering: the connection is dropped (which also
// interrupts fn) and the error is ErrUnavailable, so no caller hangs on a
// dead daemon. Errors are mapped with mapError.
func call[T any](ctx context.Context, h *hostConn, timeout time.Duration, what string, fn func(API) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("libvirt: %s: %w", what, err)
	}
	api, err := h.get(ctx)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn(api)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, mapError(what, r.err)
	case <-cctx.Done():
		if err := ctx.Err(); err != nil {
			// The caller gave up; the connection is fine.
			return zero, fmt.Errorf("libvirt: %s: %w", what, err)
		}
		h.log.WithFields(logrus.Fields{"host": h.name, "call": what, "timeout": timeout}).Warn("libvirt call timed out; dropping the connection")
		h.drop(api)
		return zero, fmt.Errorf("libvirt: %s: no answer in %s: %w: %w", what, timeout, peers.ErrUnavailable, cctx.Err())
	}
}

// do is call for fns that return only an error.
func do(ctx context.Context, h *hostConn, timeout time.Duration, what string, fn func(API) error) error {
	_, err := call(ctx, h, timeout, what, func(a API) (struct{}, error) { return struct{}{}, fn(a) })
	return err
}

// errNoHost is the error for a host name the driver was not configured with.
func errNoHost(name string) error {
	return fmt.Errorf("libvirt: no host %q: %w", name, peers.ErrUnavailable)
}
