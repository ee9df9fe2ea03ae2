package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/cloudmux/cloudmux/peers"
)

// translate turns an error from gophercloud into one wrapping a peers
// sentinel, keeping the remote cloud's own message (and the original error,
// for errors.As) so logs say what the cloud said. what names the call
// ("nova: create server"). The mapping:
//
//	404, 410                   ErrNotFound
//	409                        ErrConflict (Neutron's OverQuota: ErrCapacity)
//	413, 507, 403 naming quota ErrCapacity
//	400, 422                   ErrInvalid
//	401, other 403             ErrUnauthorized (the peer's credentials may not do this)
//	501                        ErrNotSupported
//	429, 5xx, connection       ErrUnavailable
//	context cancelled          context.Canceled (deadline: also ErrUnavailable)
func translate(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w (%w)", what, peers.ErrUnavailable, err)
	}
	if code, msg, ok := responseCode(err); ok {
		return fmt.Errorf("%s: %d %s: %w", what, code, msg, statusSentinel(code, msg))
	}
	if sentinel := gophercloudSentinel(err); sentinel != nil {
		return fmt.Errorf("%s: %w: %v", what, sentinel, err)
	}
	if isConnectionError(err) {
		return fmt.Errorf("%s: %w: %w", what, peers.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// translate is the package's translate, its error marked with the peer's
// name (peers.AtPeer) so the broker's log says which cloud failed while
// the text stays the cloud's own.
func (c *Cloud) translate(what string, err error) error {
	return peers.AtPeer(c.cfg.Name, translate(what, err))
}

// gophercloudSentinel classifies gophercloud's own (non-HTTP) errors,
// which it returns some by value and some by pointer.
func gophercloudSentinel(err error) error {
	var found error
	walk(err, func(e error) bool {
		switch e.(type) {
		case gophercloud.ErrUnableToReauthenticate, *gophercloud.ErrUnableToReauthenticate:
			found = peers.ErrUnauthorized
		case gophercloud.ErrMissingInput, *gophercloud.ErrMissingInput, gophercloud.ErrInvalidInput, *gophercloud.ErrInvalidInput:
			found = peers.ErrInvalid
		case gophercloud.ErrServiceNotFound, *gophercloud.ErrServiceNotFound, gophercloud.ErrEndpointNotFound, *gophercloud.ErrEndpointNotFound:
			found = peers.ErrNotSupported
		}
		return found != nil
	})
	return found
}

// walk visits err and everything it wraps until visit returns true.
func walk(err error, visit func(error) bool) bool {
	if err == nil {
		return false
	}
	if visit(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), visit)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if walk(e, visit) {
				return true
			}
		}
	}
	return false
}

// statusSentinel maps an HTTP status (and, for the ambiguous ones, the
// message) to a sentinel.
func statusSentinel(code int, msg string) error {
	lower := strings.ToLower(msg)
	quota := strings.Contains(lower, "quota") || strings.Contains(lower, "overquota") || strings.Contains(lower, "limit exceeded")
	switch {
	case code == http.StatusNotFound, code == http.StatusGone:
		return peers.ErrNotFound
	case code == http.StatusConflict && quota:
		return peers.ErrCapacity // Neutron: 409 OverQuota
	case code == http.StatusConflict:
		return peers.ErrConflict
	case code == http.StatusRequestEntityTooLarge, code == http.StatusInsufficientStorage:
		return peers.ErrCapacity // 413: Swift's quotas too; 507: a full disk
	case code == http.StatusForbidden && quota:
		return peers.ErrCapacity // Nova since 2.1: 403 "Quota exceeded for cores"
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return peers.ErrUnauthorized
	case code == http.StatusBadRequest, code == http.StatusUnprocessableEntity,
		code == http.StatusRequestedRangeNotSatisfiable, code == http.StatusUnsupportedMediaType:
		return peers.ErrInvalid
	case code == http.StatusNotImplemented:
		return peers.ErrNotSupported
	case code == http.StatusTooManyRequests, code >= 500:
		return peers.ErrUnavailable
	}
	return peers.ErrInvalid
}

// responseCode extracts the status and the remote message from a gophercloud
// response error (also after a re-authentication).
func responseCode(err error) (int, string, bool) {
	var v gophercloud.ErrUnexpectedResponseCode
	var p *gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &v):
	case errors.As(err, &p) && p != nil:
		v = *p
	default:
		return 0, "", false
	}
	return v.Actual, remoteMessage(v.Body, v.Actual), true
}

// remoteMessage finds the human message in an OpenStack error body: Nova
// and Cinder nest it ({"itemNotFound": {"message": ...}}), Neutron too
// ({"NeutronError": {"type": ..., "message": ...}}), Keystone under
// "error", Glance answers text. Neutron's type is kept, since it is what
// tells OverQuota from other conflicts.
func remoteMessage(body []byte, code int) string {
	var doc map[string]any
	if json.Unmarshal(body, &doc) == nil {
		if m, ok := doc["message"].(string); ok {
			return m
		}
		for _, v := range doc {
			inner, ok := v.(map[string]any)
			if !ok {
				continue
			}
			msg, _ := inner["message"].(string)
			if typ, ok := inner["type"].(string); ok && typ != "" {
				msg = typ + ": " + msg
			}
			if msg != "" {
				return msg
			}
		}
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	if text == "" {
		text = http.StatusText(code)
	}
	return text
}

// isConnectionError reports failures to reach the cloud at all: refused,
// reset, DNS, TLS, a body cut short.
func isConnectionError(err error) bool {
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
