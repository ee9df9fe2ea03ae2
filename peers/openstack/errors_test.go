package openstack_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
)

const serverPath = "/compute/v2.1/servers/00000000-0000-4000-8000-000000000001"
const serverID = "00000000-0000-4000-8000-000000000001"

// TestErrorTranslation: what the cloud answers, over real HTTP through
// gophercloud, becomes the peers sentinel the broker maps to a status, and
// the cloud's own message stays in the error.
func TestErrorTranslation(t *testing.T) {
	tests := []struct {
		name    string
		reply   reply
		want    error
		message string
	}{
		{"404 not found", reply{status: 404, body: novaFault("itemNotFound", 404, "Instance could not be found.")}, peers.ErrNotFound, "Instance could not be found."},
		{"409 conflict", reply{status: 409, body: novaFault("conflictingRequest", 409, "Cannot 'stop' instance while it is in vm_state stopped")}, peers.ErrConflict, "vm_state stopped"},
		{"409 Neutron over quota", reply{status: 409, body: neutronFault("OverQuota", "Quota exceeded for resources: ['port'].")}, peers.ErrCapacity, "OverQuota"},
		{"413 over limit", reply{status: 413, body: novaFault("overLimit", 413, "VolumeSizeExceedsAvailableQuota")}, peers.ErrCapacity, "VolumeSizeExceedsAvailableQuota"},
		{"403 quota", reply{status: 403, body: novaFault("forbidden", 403, "Quota exceeded for cores: Requested 4, but already used 20 of 20 cores")}, peers.ErrCapacity, "Quota exceeded for cores"},
		{"403 policy", reply{status: 403, body: novaFault("forbidden", 403, "Policy doesn't allow os_compute_api:servers:stop to be performed.")}, peers.ErrUnauthorized, "Policy doesn't allow"},
		{"400 bad request", reply{status: 400, body: novaFault("badRequest", 400, "Invalid flavorRef provided.")}, peers.ErrInvalid, "Invalid flavorRef"},
		{"400 Glance text body", reply{status: 400, body: "400 Bad Request\n\nProvided object does not match schema 'image'\n\n"}, peers.ErrInvalid, "does not match schema"},
		{"501 not implemented", reply{status: 501, body: novaFault("notImplemented", 501, "Unable to stop a baremetal node")}, peers.ErrNotSupported, "baremetal"},
		{"503 unavailable", reply{status: 503, body: "<html>Service Unavailable</html>"}, peers.ErrUnavailable, "Service Unavailable"},
		{"500 internal", reply{status: 500, body: novaFault("computeFault", 500, "Unexpected API Error.")}, peers.ErrUnavailable, "Unexpected API Error"},
		{"connection dropped", reply{hangup: true}, peers.ErrUnavailable, ""},
	}
	s := newAPIServer(t, 79)
	c := connectAPI(t, s, openstack.RetryPolicy{MaxRetries: -1})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A POST (an action): never retried, so one answer decides.
			s.script("POST", serverPath+"/action", tc.reply)
			err := c.ServerAction(t.Context(), serverID, peers.ActionStop)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ServerAction answered %d %q: error %v, want errors.Is %v", tc.reply.status, tc.reply.body, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q lacks the cloud's message %q", err, tc.message)
			}
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.GetServer(ctx, serverID)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GetServer with a cancelled context: %v, want context.Canceled", err)
		}
	})
	t.Run("unknown action refused before any call", func(t *testing.T) {
		before := s.count("POST", serverPath+"/action")
		err := c.ServerAction(t.Context(), serverID, peers.ServerAction("explode"))
		if !errors.Is(err, peers.ErrInvalid) || s.count("POST", serverPath+"/action") != before {
			t.Fatalf("unknown action: %v (calls %d -> %d), want ErrInvalid and no call", err, before, s.count("POST", serverPath+"/action"))
		}
	})
}

const okServer = `{"server": {"id": "00000000-0000-4000-8000-000000000001", "name": "s", "status": "ACTIVE", "tenant_id": "p-test",
 "flavor": {"original_name": "m1", "vcpus": 1, "ram": 64, "disk": 1}, "image": {"id": "img"}, "metadata": {}, "addresses": {},
 "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"}}`

// TestRetryPolicy: idempotent calls (GET, DELETE) are retried, with
// backoff, on 5xx/429 and dropped connections, at most MaxRetries times;
// POSTs and other 4xx never.
func TestRetryPolicy(t *testing.T) {
	unavailable := reply{status: 503, body: "busy"}
	tests := []struct {
		name      string
		method    string
		replies   []reply
		call      func(ctx context.Context, c *openstack.Cloud) error
		want      error // nil: success
		wantCalls int
	}{
		{"GET recovers after two 503s", "GET", []reply{unavailable, unavailable, {status: 200, body: okServer}},
			getServer, nil, 3},
		{"GET gives up after MaxRetries", "GET", []reply{unavailable},
			getServer, peers.ErrUnavailable, 1 + fastRetry.MaxRetries},
		{"GET retries a dropped connection", "GET", []reply{{hangup: true}, {status: 200, body: okServer}},
			getServer, nil, 2},
		{"GET retries 429", "GET", []reply{{status: 429, body: "slow down", header: map[string]string{"Retry-After": "0"}}, {status: 200, body: okServer}},
			getServer, nil, 2},
		{"GET 404 is not retried", "GET", []reply{{status: 404, body: novaFault("itemNotFound", 404, "gone")}},
			getServer, peers.ErrNotFound, 1},
		{"DELETE recovers after a 502", "DELETE", []reply{{status: 502, body: "bad gateway"}, {status: 204}},
			func(ctx context.Context, c *openstack.Cloud) error { return c.DeleteServer(ctx, serverID) }, nil, 2},
		{"POST is never retried", "POST", []reply{unavailable, {status: 202}},
			func(ctx context.Context, c *openstack.Cloud) error {
				return c.ServerAction(ctx, serverID, peers.ActionStop)
			}, peers.ErrUnavailable, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newAPIServer(t, 79)
			path := serverPath
			if tc.method == "POST" {
				path += "/action"
			}
			s.script(tc.method, path, tc.replies...)
			s.script("GET", "/compute/v2.1/flavors/detail", reply{status: 200, body: `{"flavors": [{"id": "1", "name": "m1", "vcpus": 1, "ram": 64, "disk": 1}]}`})
			c := connectAPI(t, s, fastRetry)
			err := tc.call(t.Context(), c)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if n := s.count(tc.method, path); n != tc.wantCalls {
				t.Fatalf("%s %s sent %d times, want %d", tc.method, path, n, tc.wantCalls)
			}
		})
	}
	t.Run("no retry past the context's deadline", func(t *testing.T) {
		s := newAPIServer(t, 79)
		s.script("GET", serverPath, unavailable)
		c := connectAPI(t, s, openstack.RetryPolicy{MaxRetries: 3, Base: time.Hour, Max: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := c.GetServer(ctx, serverID); !errors.Is(err, peers.ErrUnavailable) {
			t.Fatalf("GetServer: %v, want ErrUnavailable", err)
		}
		if n := s.count("GET", serverPath); n != 1 {
			t.Fatalf("sent %d times; a backoff longer than the deadline must not be waited out", n)
		}
	})
}

func getServer(ctx context.Context, c *openstack.Cloud) error {
	srv, err := c.GetServer(ctx, serverID)
	if err == nil && (srv.FlavorID != "1" || srv.Status != peers.ServerActive) {
		return errors.New("server decoded wrong: flavor " + srv.FlavorID + ", status " + string(srv.Status))
	}
	return err
}

func TestBackoffBounds(t *testing.T) {
	p := openstack.RetryPolicy{MaxRetries: 5, Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		n          uint
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 0, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 0, 200 * time.Millisecond, 400 * time.Millisecond},
		{10, 0, 500 * time.Millisecond, time.Second},                                // capped by Max
		{1, 700 * time.Millisecond, 700 * time.Millisecond, 700 * time.Millisecond}, // Retry-After raises it
		{1, time.Hour, time.Second, time.Second},                                    // but never past Max
	}
	for _, tc := range tests {
		for range 50 {
			if d := p.Backoff(tc.n, tc.retryAfter); d < tc.lo || d > tc.hi {
				t.Fatalf("Backoff(%d, %v) = %v, want within [%v, %v]", tc.n, tc.retryAfter, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestRetryable(t *testing.T) {
	if openstack.Retryable("POST", errors.New("connection reset")) {
		t.Fatal("a POST is retryable")
	}
	if openstack.Retryable("GET", context.DeadlineExceeded) {
		t.Fatal("a GET that ran out of time is retryable")
	}
}
