package consul

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/hashicorp/consul/api"

	"github.com/cloudmux/cloudmux/registry"
)

// fail translates an error from the Consul client at the package boundary:
//
//   - the caller's context ended: the context's error, so
//     errors.Is(err, context.Canceled) holds whatever the transport made
//     of it;
//   - Consul could not be reached or answered 5xx/429: registry.ErrUnavailable
//     wrapped together with the cause, so callers can retry and logs keep
//     the reason;
//   - anything else (ACL denial, a 400): the cause, wrapped.
//
// subject is the caller's key (without the store prefix) or peer ID.
func (s *Store) fail(ctx context.Context, op, subject string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("consul: %s %q: %w", op, subject, ctxErr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("consul: %s %q: %w", op, subject, err)
	}
	if isTransient(err) {
		return fmt.Errorf("consul: %s %q: %w: %w", op, subject, registry.ErrUnavailable, err)
	}
	return fmt.Errorf("consul: %s %q: %w", op, subject, err)
}

// isTransient reports errors a retry may cure: Consul down or unreachable,
// a server error (500 is also how Consul says "no cluster leader"), or rate
// limiting. TLS verification failures are configuration errors and are not
// transient, even though they surface from the transport too.
func isTransient(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code >= 500 || se.Code == http.StatusTooManyRequests
	}
	// *url.Error itself satisfies net.Error, so look at what it wraps.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if isTLSConfigError(err) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true // dial failures, resets, timeouts
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

func isTLSConfigError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError // https client talking to an http server
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &header)
}

// isStatus reports whether err is an HTTP answer with the given code.
func isStatus(err error, code int) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == code
}

// txnRefusals extracts the per-operation errors of a transaction Consul
// refused with 409 Conflict.
func txnRefusals(err error) ([]string, bool) {
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict {
		return nil, false
	}
	var resp api.TxnResponse
	if json.Unmarshal([]byte(se.Body), &resp) != nil || len(resp.Errors) == 0 {
		return nil, false
	}
	what := make([]string, 0, len(resp.Errors))
	for _, e := range resp.Errors {
		what = append(what, e.What)
	}
	return what, true
}
