package faults_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

var (
	errThing   = errors.New("thing: invalid request")
	errWords   = errors.New("words: could not find")
	_          = faults.Register(errThing)
	_          = faults.RegisterWords("words: ", errWords)
	peerURLErr = &url.Error{Op: "Get", URL: "http://127.0.0.1:41234/v2.1/servers/abc", Err: errors.New("connection refused")}
)

// userErr is a broker-authored error type, as compute.Error is.
type userErr struct{ msg string }

func (e *userErr) Error() string       { return "internal: " + e.msg }
func (e *userErr) UserMessage() string { return e.msg }

func TestMessage(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		want   string
		authed bool
	}{
		{"registered sentinel text is cut", fmt.Errorf("name: longer than 255 characters: %w", errThing), 400,
			"name: longer than 255 characters", true},
		{"sentinel first", fmt.Errorf("%w: tag x too long", errThing), 400, "tag x too long", true},
		{"words kept without prefix", fmt.Errorf("%w: user alice", errWords), 404, "could not find: user alice", true},
		{"authored type", &userErr{"Instance x could not be found."}, 404, "Instance x could not be found.", true},
		{"authored in a wrapper", fmt.Errorf("creating: %w", &userErr{"flavor too small"}), 400, "creating: flavor too small", true},
		{"joined authored parts", errors.Join(fmt.Errorf("a: %w", errThing), fmt.Errorf("b: %w", errThing)), 400, "a; b", true},
		{"peer sentinel is foreign", fmt.Errorf("GET http://10.1.2.3:8774/servers: %w", peers.ErrUnavailable), 503,
			faults.Generic(503), false},
		{"store error is foreign", fmt.Errorf("get %q: %w", "cloudmux/index/x", registry.ErrNotFound), 404, faults.Generic(404), false},
		{"the Store unreachable is not a cloud", fmt.Errorf("writing quota-usage/p: consul: cas at 127.0.0.1:8500: %w", registry.ErrUnavailable), 503,
			"Service Unavailable: the broker's state store is not reachable (for example during a Consul leader election); retry later", false},
		{"foreign cause under broker words", fmt.Errorf("image %s on peer %s: %w", "i", "p", peerURLErr), 503, faults.Generic(503), false},
		{"plain errors.New is foreign", errors.New("sql: no rows"), 409, faults.Generic(409), false},
		{"500 never shows", fmt.Errorf("x: %w", errThing), 500, faults.Generic(500), false},
		{"bare sentinel is generic", errThing, 400, faults.Generic(400), false},
		{"field errors", fmt.Errorf("%w: %w", registry.ErrInvalid, errors.Join(&registry.FieldError{Field: "name", Reason: "required"})),
			400, "name: required", true},
		{"peer mark hides nothing and adds nothing", faults.AtPeer("803ecb04", fmt.Errorf("image i is away: %w", errThing)), 503,
			"image i is away", true},
		{"cause kept out", faults.WithCause(fmt.Errorf("cannot attach: %w", errThing), peerURLErr), 409, "cannot attach", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := faults.Message(tc.err, tc.code)
			if got != tc.want || ok != tc.authed {
				t.Fatalf("Message = %q, %v; want %q, %v", got, ok, tc.want, tc.authed)
			}
			for _, leak := range []string{"127.0.0.1", "10.1.2.3", "803ecb04", "registry:", "peers:", "thing:", "words:"} {
				if strings.Contains(got, leak) {
					t.Fatalf("Message %q leaks %q", got, leak)
				}
			}
		})
	}
}

func TestForeign(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"broker words", fmt.Errorf("x: %w", errThing), false},
		{"authored", &userErr{"m"}, false},
		{"peer error", fmt.Errorf("x: %w", peers.ErrUnavailable), true},
		{"cause", faults.WithCause(errThing, peerURLErr), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := faults.Foreign(tc.err); got != tc.want {
				t.Fatalf("Foreign = %v, want %v", got, tc.want)
			}
		})
	}
}

// The log line has what the answer left out: the chain, the peer, the
// cause, the request ID and the caller's project.
func TestLog(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	log.SetFormatter(&logrus.JSONFormatter{})
	err := faults.AtPeer("803ecb04", faults.WithCause(fmt.Errorf("image i is away: %w", errThing), peerURLErr))
	faults.Log(log, "req-1", http.StatusServiceUnavailable, err, logrus.Fields{"project": "team-a"})
	var line map[string]any
	if e := json.Unmarshal(buf.Bytes(), &line); e != nil {
		t.Fatalf("log line %q: %v", buf.String(), e)
	}
	for k, want := range map[string]string{"request_id": "req-1", "project": "team-a", "peer": "803ecb04",
		"cause": peerURLErr.Error(), "error": err.Error(), "level": "warning"} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %q (line %s)", k, line[k], want, buf.String())
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"capacity", fmt.Errorf("10.0.0.1 full: %w", peers.ErrCapacity), "not enough capacity or quota"},
		{"unavailable", fmt.Errorf("%w (%w)", peers.ErrUnavailable, peerURLErr), "not reachable"},
		{"other", peerURLErr, "failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := faults.Reason(tc.err); got != tc.want {
				t.Fatalf("Reason = %q, want %q", got, tc.want)
			}
		})
	}
}

// valueErr is an error of a type that cannot be a map key.
type valueErr struct{ parts []string }

func (e valueErr) Error() string { return strings.Join(e.parts, ",") }

func TestUncomparableErrors(t *testing.T) {
	err := fmt.Errorf("x: %w", valueErr{parts: []string{"a"}})
	if got, ok := faults.Message(err, 400); ok || got != faults.Generic(400) {
		t.Fatalf("Message = %q, %v; want the generic text", got, ok)
	}
	if !faults.Foreign(err) {
		t.Fatal("Foreign = false for an error the broker did not write")
	}
}

// An admin's tool shows the cause, without the sentinels' package names.
func TestDetail(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"store", fmt.Errorf("peer %q: %w", "eu", registry.ErrNotFound), `peer "eu": key not found`},
		{"peer", fmt.Errorf("flavor 9: %w", peers.ErrNotFound), "flavor 9: resource not found"},
		{"registered", fmt.Errorf("name: too long: %w", errThing), "name: too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := faults.Detail(tc.err); got != tc.want {
				t.Fatalf("Detail = %q, want %q", got, tc.want)
			}
		})
	}
}
