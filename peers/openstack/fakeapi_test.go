package openstack_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

// apiServer is a real HTTP server speaking just enough Keystone v3 and Nova
// for the driver to connect, and answering other Nova paths from a script:
// the error translation and retry tests go through gophercloud and the
// driver over real HTTP, with the cloud's answers chosen per test.
type apiServer struct {
	*httptest.Server
	t testing.TB

	mu       sync.Mutex
	scripts  map[string][]reply // "METHOD /path" -> answers, the last repeated
	hits     map[string]int
	tokens   int    // tokens issued
	maxMinor int    // Nova's announced maximum microversion; 0: none
	expired  string // a token answered 401 from now on
	headers  []string
	// tokenTTL is the lifetime of issued tokens; default an hour.
	tokenTTL time.Duration
	// objectStore lists Swift (swiftPath) in the catalog.
	objectStore bool
	// requests holds the last request's headers by "METHOD /path".
	requests map[string]http.Header
	// bodies holds the last request body by "METHOD path".
	bodies map[string][]byte
}

// swiftPath is the fake catalog's object-store endpoint path.
const swiftPath = "/swift/v1/AUTH_p-test"

// lastHeader is a header of the last request to method and path.
func (s *apiServer) lastHeader(method, path, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[method+" "+path].Get(key)
}

type reply struct {
	status int
	body   string
	header map[string]string
	// hangup closes the connection without an answer.
	hangup bool
}

func newAPIServer(t testing.TB, maxMinor int) *apiServer {
	s := &apiServer{t: t, scripts: map[string][]reply{}, hits: map[string]int{}, maxMinor: maxMinor}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// newTLSAPIServer is newAPIServer over HTTPS, with a certificate of its own
// CA (httptest's), which no system trusts.
func newTLSAPIServer(t testing.TB) *apiServer {
	s := &apiServer{t: t, scripts: map[string][]reply{}, hits: map[string]int{}, maxMinor: 79}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *apiServer) script(method, path string, replies ...reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[method+" "+path] = replies
}

func (s *apiServer) count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[method+" "+path]
}

func (s *apiServer) tokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

// expire makes the current token answer 401, as Keystone-protected APIs do
// once a token expires.
func (s *apiServer) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = fmt.Sprintf("token-%d", s.tokens)
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	s.mu.Lock()
	s.hits[key]++
	n := s.hits[key]
	s.headers = append(s.headers, r.Header.Get("X-OpenStack-Nova-API-Version"))
	if s.requests == nil {
		s.requests = map[string]http.Header{}
	}
	h := r.Header.Clone()
	if len(r.TransferEncoding) > 0 { // net/http moves it out of Header
		h.Set("Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
	}
	s.requests[key] = h
	expired := s.expired != "" && r.Header.Get("X-Auth-Token") == s.expired
	replies := s.scripts[key]
	s.mu.Unlock()
	switch {
	case key == "POST /v3/auth/tokens":
		s.issueToken(w)
		return
	case key == "GET /compute/v2.1/" || key == "GET /compute/v2.1":
		v := map[string]any{"id": "v2.1", "status": "CURRENT", "version": "", "min_version": ""}
		if s.maxMinor > 0 {
			v["version"], v["min_version"] = fmt.Sprintf("2.%d", s.maxMinor), "2.1"
		}
		writeJSON(w, 200, map[string]any{"version": v})
		return
	case key == "GET /image/" || key == "GET /image":
		writeJSON(w, 300, map[string]any{"versions": []any{map[string]any{"id": "v2.16", "status": "CURRENT",
			"links": []any{map[string]any{"rel": "self", "href": s.URL + "/image/v2/"}}}}})
		return
	case expired:
		writeJSON(w, 401, map[string]any{"error": map[string]any{"code": 401, "message": "The request you have made requires authentication."}})
		return
	case len(replies) == 0:
		writeJSON(w, 404, map[string]any{"itemNotFound": map[string]any{"code": 404, "message": "no script for " + key}})
		return
	}
	// Read what the client sends, as a real service does before it
	// answers (an upload with Expect: 100-continue waits for that).
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	if s.bodies == nil {
		s.bodies = map[string][]byte{}
	}
	s.bodies[key] = body
	s.mu.Unlock()
	rp := replies[min(n, len(replies))-1]
	if rp.hangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	for k, v := range rp.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rp.status)
	_, _ = w.Write([]byte(rp.body))
}

func (s *apiServer) issueToken(w http.ResponseWriter) {
	s.mu.Lock()
	s.tokens++
	id := fmt.Sprintf("token-%d", s.tokens)
	ttl := s.tokenTTL
	objectStore := s.objectStore
	s.mu.Unlock()
	if ttl == 0 {
		ttl = time.Hour
	}
	catalog := []any{
		map[string]any{"type": "compute", "name": "nova", "id": "c1", "endpoints": []any{
			map[string]any{"id": "e1", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": s.URL + "/compute/v2.1"},
		}},
		map[string]any{"type": "image", "name": "glance", "id": "c2", "endpoints": []any{
			map[string]any{"id": "e2", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": s.URL + "/image"},
		}},
	}
	if objectStore {
		catalog = append(catalog, map[string]any{"type": "object-store", "name": "swift", "id": "c3", "endpoints": []any{
			map[string]any{"id": "e3", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": s.URL + swiftPath},
		}})
	}
	w.Header().Set("X-Subject-Token", id)
	writeJSON(w, 201, map[string]any{"token": map[string]any{
		"expires_at": time.Now().Add(ttl).UTC().Format(time.RFC3339),
		"project":    map[string]any{"id": "p-test", "name": "test", "domain": map[string]any{"id": "default", "name": "Default"}},
		"user":       map[string]any{"id": "u-test", "name": "test", "domain": map[string]any{"id": "default", "name": "Default"}},
		"roles":      []any{map[string]any{"id": "r1", "name": "member"}},
		"catalog":    catalog,
	}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fastRetry keeps the tests quick while exercising the whole policy.
var fastRetry = openstack.RetryPolicy{MaxRetries: 3, Base: time.Millisecond, Max: 4 * time.Millisecond}

// connectAPI connects the driver to s with password credentials.
func connectAPI(t testing.TB, s *apiServer, retry openstack.RetryPolicy) *openstack.Cloud {
	t.Helper()
	c, err := openstack.New(context.Background(), apiConfig(s, retry))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func apiConfig(s *apiServer, retry openstack.RetryPolicy) openstack.Config {
	return openstack.Config{
		Name:     "fake",
		Endpoint: registry.Endpoint{AuthURL: s.URL + "/v3", Region: "RegionOne"},
		Credentials: registry.Credentials{Username: "test", Password: "pw", UserDomainName: "Default",
			ProjectName: "test", ProjectDomainName: "Default"},
		Retry: retry,
	}
}

func novaFault(kind string, code int, msg string) string {
	b, _ := json.Marshal(map[string]any{kind: map[string]any{"code": code, "message": msg}})
	return string(b)
}

func neutronFault(typ, msg string) string {
	b, _ := json.Marshal(map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
	return string(b)
}

func TestMicroversionNegotiation(t *testing.T) {
	tests := []struct {
		name     string
		cloudMax int
		want     string
	}{
		{"newer cloud: what the driver asks for", 93, openstack.WantComputeMicroversion},
		{"older cloud: its maximum", 60, "2.60"},
		{"no microversions announced: no header", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newAPIServer(t, tc.cloudMax)
			s.script("GET", "/compute/v2.1/flavors/1", reply{status: 200, body: `{"flavor": {"id": "1", "name": "m1", "vcpus": 1, "ram": 64, "disk": 1}}`})
			c := connectAPI(t, s, fastRetry)
			if got := c.ComputeMicroversion(); got != tc.want {
				t.Fatalf("ComputeMicroversion() = %q, want %q", got, tc.want)
			}
			if _, err := c.GetFlavor(t.Context(), "1"); err != nil {
				t.Fatalf("GetFlavor: %v", err)
			}
			s.mu.Lock()
			sent := s.headers[len(s.headers)-1]
			s.mu.Unlock()
			if sent != tc.want {
				t.Fatalf("the flavor request carried X-OpenStack-Nova-API-Version %q, want %q", sent, tc.want)
			}
		})
	}
}

func TestTokenRenewedOnExpiry(t *testing.T) {
	s := newAPIServer(t, 79)
	s.script("GET", "/compute/v2.1/flavors/1", reply{status: 200, body: `{"flavor": {"id": "1", "name": "m1", "vcpus": 1, "ram": 64, "disk": 1}}`})
	c := connectAPI(t, s, fastRetry)
	if n := s.tokensIssued(); n != 1 {
		t.Fatalf("%d tokens issued on connect, want 1", n)
	}
	s.expire()
	if _, err := c.GetFlavor(t.Context(), "1"); err != nil {
		t.Fatalf("GetFlavor with an expired token: %v (want a new token and the call replayed)", err)
	}
	if n := s.tokensIssued(); n != 2 {
		t.Fatalf("%d tokens issued, want 2 (one re-authentication)", n)
	}
	if n := s.count("GET", "/compute/v2.1/flavors/1"); n != 2 {
		t.Fatalf("the call was sent %d times, want 2 (refused, then replayed)", n)
	}
}

func TestConnectRefusals(t *testing.T) {
	s := newAPIServer(t, 79)
	tests := []struct {
		name string
		cfg  openstack.Config
	}{
		{"no auth URL", openstack.Config{Credentials: registry.Credentials{Username: "u", Password: "p", UserDomainName: "Default"}}},
		{"credentials missing a password", openstack.Config{Endpoint: registry.Endpoint{AuthURL: s.URL + "/v3"}, Credentials: registry.Credentials{Username: "u", UserDomainName: "Default"}}},
		{"bad CA bundle", openstack.Config{Endpoint: registry.Endpoint{AuthURL: s.URL + "/v3", CACert: "not a PEM"}, Credentials: registry.Credentials{Username: "u", Password: "p", UserDomainName: "Default"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := openstack.New(t.Context(), tc.cfg)
			if err == nil {
				_ = c.Close()
				t.Fatalf("New accepted %s", tc.name)
			}
			if !strings.Contains(err.Error(), "invalid") {
				t.Fatalf("New: %v, want ErrInvalid", err)
			}
		})
	}
}

// TestMissingServices: a cloud whose catalog lists no Neutron nor Cinder
// still connects; network and volume calls are ErrNotSupported.
func TestMissingServices(t *testing.T) {
	s := newAPIServer(t, 79)
	c := connectAPI(t, s, fastRetry)
	calls := map[string]error{
		"ListNetworks": func() error { _, err := c.ListNetworks(t.Context(), peers.ListOptions{}); return err }(),
		"CreateVolume": func() error {
			_, err := c.CreateVolume(t.Context(), peers.VolumeSpec{Name: "v", SizeGiB: 1})
			return err
		}(),
	}
	for name, err := range calls {
		if !errors.Is(err, peers.ErrNotSupported) {
			t.Errorf("%s on a cloud without the service: %v, want ErrNotSupported", name, err)
		}
	}
}

// TestTLS: a cloud whose certificate no system trusts is reached with its
// CA bundle, or with insecure; without either the connection is refused.
func TestTLS(t *testing.T) {
	s := newTLSAPIServer(t)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}))
	tests := []struct {
		name     string
		caCert   string
		insecure bool
		want     error
	}{
		{"CA bundle", caPEM, false, nil},
		{"insecure", "", true, nil},
		{"neither", "", false, peers.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := apiConfig(s, fastRetry)
			cfg.Endpoint.CACert, cfg.Endpoint.Insecure = tc.caCert, tc.insecure
			c, err := openstack.New(t.Context(), cfg)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("New: %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			_ = c.Close()
		})
	}
}

// TestDownloadChecksum: a download whose bytes do not match Glance's
// Content-MD5 fails at its end instead of ending cleanly.
func TestDownloadChecksum(t *testing.T) {
	const id = "00000000-0000-4000-8000-0000000000d1"
	data := "the image bytes"
	sum := md5.Sum([]byte(data))
	good := base64.StdEncoding.EncodeToString(sum[:])
	bad := base64.StdEncoding.EncodeToString(make([]byte, md5.Size))
	tests := []struct {
		name    string
		header  string
		wantErr error
	}{
		{"matching Content-MD5", good, nil},
		{"no Content-MD5", "", nil},
		{"mismatching Content-MD5", bad, peers.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newAPIServer(t, 79)
			h := map[string]string{}
			if tc.header != "" {
				h["Content-MD5"] = tc.header
			}
			s.script("GET", "/image/v2/images/"+id+"/file", reply{status: 200, body: data, header: h})
			c := connectAPI(t, s, fastRetry)
			rc, err := c.DownloadImage(t.Context(), id)
			if err != nil {
				t.Fatalf("DownloadImage: %v", err)
			}
			got, err := io.ReadAll(rc)
			_ = rc.Close()
			if tc.wantErr == nil && (err != nil || string(got) != data) {
				t.Fatalf("read %q, %v; want %q", got, err, data)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("read error %v, want %v", err, tc.wantErr)
			}
		})
	}
	t.Run("no data yet", func(t *testing.T) {
		s := newAPIServer(t, 79)
		s.script("GET", "/image/v2/images/"+id+"/file", reply{status: 204})
		c := connectAPI(t, s, fastRetry)
		if _, err := c.DownloadImage(t.Context(), id); !errors.Is(err, peers.ErrConflict) {
			t.Fatalf("DownloadImage of a queued image: %v, want ErrConflict", err)
		}
	})
}

// TestUploadRenewsTokenFirst: an upload streams its body once, so a token
// about to expire is renewed before the upload starts rather than met by a
// 401 halfway through.
func TestUploadRenewsTokenFirst(t *testing.T) {
	const id = "00000000-0000-4000-8000-0000000000d2"
	data := []byte("image bytes")
	sum := md5.Sum(data)
	s := newAPIServer(t, 79)
	s.mu.Lock()
	s.tokenTTL = time.Minute // well inside the renewal margin
	s.mu.Unlock()
	s.script("PUT", "/image/v2/images/"+id+"/file", reply{status: 204})
	s.script("GET", "/image/v2/images/"+id, reply{status: 200, body: fmt.Sprintf(
		`{"id": %q, "name": "i", "status": "active", "size": %d, "checksum": "%x", "visibility": "private", "disk_format": "raw", "container_format": "bare"}`,
		id, len(data), sum)})
	c := connectAPI(t, s, fastRetry)
	if err := c.UploadImage(t.Context(), id, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("UploadImage: %v", err)
	}
	if n := s.tokensIssued(); n != 2 {
		t.Fatalf("%d tokens issued, want 2: the short-lived one renewed before the upload", n)
	}
	if n := s.count("PUT", "/image/v2/images/"+id+"/file"); n != 1 {
		t.Fatalf("the upload was sent %d times, want once", n)
	}
}

// TestRebuildKeyAndUserDataWhenPinnedLow: a peer whose calls are pinned
// below 2.57 (its compute_microversion) still sends a rebuild's key and
// user data, at 2.57 for that call, when the cloud takes them: the broker
// records them as the server's.
func TestRebuildKeyAndUserDataWhenPinnedLow(t *testing.T) {
	s := newAPIServer(t, 93)
	const action = "POST /compute/v2.1/servers/s1/action"
	s.script("POST", "/compute/v2.1/servers/s1/action", reply{status: 202, body: `{"server": {"id": "s1"}}`})
	cfg := apiConfig(s, fastRetry)
	cfg.ComputeMicroversion = "2.53"
	c, err := openstack.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.RebuildServer(t.Context(), "s1", peers.RebuildSpec{ImageID: "img", KeyName: "k", UserData: []byte("#!/bin/sh\n")}); err != nil {
		t.Fatalf("RebuildServer: %v", err)
	}
	s.mu.Lock()
	version := s.requests[action].Get("X-OpenStack-Nova-API-Version")
	body := s.bodies[action]
	s.mu.Unlock()
	var sent struct {
		Rebuild map[string]any `json:"rebuild"`
	}
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatalf("rebuild body %s: %v", body, err)
	}
	if version != "2.57" || sent.Rebuild["key_name"] != "k" || sent.Rebuild["user_data"] == nil {
		t.Fatalf("rebuild sent at %q: %s; want 2.57 with key_name and user_data", version, body)
	}
}
