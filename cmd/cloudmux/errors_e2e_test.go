package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/registry"
)

// faultProxy stands between a front broker and its peer (another cloudmux
// broker, reached as an OpenStack cloud) and fails the way a remote cloud
// does: down (connections dropped), hanging until the caller gives up, or
// answering 500 with an internal body that names addresses.
type faultProxy struct {
	*httptest.Server
	mode atomic.Value // "", "down", "hang", "500"
}

const internalBody = `{"computeFault": {"code": 500, "message": "Traceback (most recent call last): ` +
	`pymysql.err.OperationalError: Can't connect to MySQL server on '127.0.0.1:3306'"}}`

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{}
	p.mode.Store("")
	// The peer's catalog names the host it was reached at: keep the
	// proxy's, so every call of the front broker goes through the proxy.
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.mode.Load().(string) {
		case "down":
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case "hang":
			<-r.Context().Done()
		case "500":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, internalBody)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

// frontBroker is an in-process broker with a Store whose faults the test
// injects and a JSON log the test reads.
type frontBroker struct {
	addr, token string
	store       *registry.Memory
	logs        *lockedBuffer
}

func (f *frontBroker) call(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", f.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// freshConns sends each request on its own connection. On a kept-alive
// connection, an EC2 POST right after a request that waited out a hanging
// peer found its context already canceled (the credential lookup failed):
// a server-side problem of its own, not what this test is about.
var freshConns = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func send(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	resp, err := freshConns.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

func (f *frontBroker) mustJSON(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	code, _, raw := f.call(t, method, path, body, nil)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

// ec2Call signs an EC2 Query request with keys.
func (f *frontBroker) ec2Call(t *testing.T, keys ec2.Keys, form url.Values) (int, http.Header, string) {
	t.Helper()
	body := []byte(form.Encode())
	req, err := http.NewRequest(http.MethodPost, f.addr+"/ec2/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if err := ec2.Sign(req, body, keys, "RegionOne", "ec2", time.Now()); err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

// logLines are the front broker's JSON log lines carrying request ID id.
func (f *frontBroker) logLines(id string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(f.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["request_id"] == id {
			out = append(out, line)
		}
	}
	return out
}

// TestErrorsToTenantsCarryNoInternals drives each kind of failure through
// every API family over HTTP: a peer down, a peer that hangs, a peer
// answering 500 with an internal body, an unknown path, and a Store that
// fails. No answer names the peer's ID or address or carries a sentinel's
// text, every answer carries its request ID, and the broker's log has the
// detail under that ID.
func TestErrorsToTenantsCarryNoInternals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two brokers and waits out peer timeouts")
	}
	peer := startDev(t)
	px := newFaultProxy(t, peer.addr)
	f := &frontBroker{store: registry.NewMemory(), logs: &lockedBuffer{}}
	f.addr, f.token = startInProcessWith(t, func(c *Config) { c.store = f.store },
		LogConfig{Level: "info", Format: "json"}, f.logs)

	// The peer: another cloudmux, as an OpenStack cloud, through the proxy.
	var created struct {
		Peer struct {
			ID string `json:"id"`
		} `json:"peer"`
	}
	f.mustJSON(t, "POST", "/v1/peers/", fmt.Sprintf(`{"name":"remote","kind":"openstack","endpoint":{"auth_url":%q},
		"credentials":{"username":"admin","password":%q,"project_name":"admin","user_domain_name":"Default","project_domain_name":"Default"}}`,
		px.URL+"/v3", testAdminPassword), http.StatusCreated, &created)
	waitFor2(t, 2*time.Minute, "peer remote up", func() (bool, string) {
		var p struct{ Peer struct{ Status string } }
		code, _, raw := f.call(t, "GET", "/v1/peers/remote", "", nil)
		_ = json.Unmarshal([]byte(raw), &p)
		return code == 200 && p.Peer.Status == "up", raw
	})
	remote := resourcesOnRemote(t, f)
	keys := ec2Keys(t, f)
	remote.ec2Volume = ec2VolumeIn(t, f, keys, "remote")

	leaks := []string{created.Peer.ID, strings.TrimPrefix(px.URL, "http://"), strings.TrimPrefix(peer.addr, "http://"),
		"127.0.0.1", "registry:", "peers:", "index:", "Traceback", "MySQL"}
	type request struct {
		family string
		do     func() (int, http.Header, string)
	}
	api := func(family, method, path, body string) request {
		return request{family, func() (int, http.Header, string) { return f.call(t, method, path, body, nil) }}
	}
	ec2Req := func(form url.Values) request {
		return request{"ec2", func() (int, http.Header, string) { return f.ec2Call(t, keys, form) }}
	}
	peerRequests := []request{
		api("nova", "GET", "/compute/v2.1/servers/"+remote.server, ""),
		api("cinder", "GET", "/volume/v3/volumes/"+remote.volume, ""),
		api("neutron", "GET", "/network/v2.0/networks/"+remote.network, ""),
		// An image ID the index does not know is asked of every peer.
		api("glance", "GET", "/image/v2/images/6b1f0e0e-8d44-4a55-9f5e-0e8a2f0c1d2e", ""),
		ec2Req(url.Values{"Action": {"DeleteVolume"}, "Version": {ec2.APIVersion}, "VolumeId": {remote.ec2Volume}}),
	}
	// check sends r and checks its answer, and that the log has the
	// detail under its request ID: a line with the error naming one of
	// detail, and the caller's project when withProject.
	check := func(t *testing.T, r request, withProject bool, detail ...string) {
		t.Helper()
		code, hdr, body := r.do()
		if code < 400 {
			t.Fatalf("%s answered %d %s, want a failure", r.family, code, body)
		}
		for _, leak := range leaks {
			if leak != "" && strings.Contains(body, leak) {
				t.Errorf("%s answer %d leaks %q: %s", r.family, code, leak, body)
			}
		}
		id := hdr.Get("X-Openstack-Request-Id")
		if id == "" || !strings.Contains(body, id) {
			t.Errorf("%s answer %d does not carry its request ID %q: %s", r.family, code, id, body)
		}
		if len(detail) == 0 {
			return
		}
		var logged bool
		for _, line := range f.logLines(id) {
			e, _ := line["error"].(string)
			if e == "" {
				continue
			}
			e += fmt.Sprintf(" peer=%v cause=%v", line["peer"], line["cause"])
			for _, d := range detail {
				if strings.Contains(e, d) && (!withProject || line["project"] != nil) {
					logged = true
					t.Logf("%s %d %s; log: %v", r.family, code, body, line)
				}
			}
		}
		if !logged {
			t.Errorf("%s answer %d: no log line under %s with an error naming any of %q (project: %v):\n%v",
				r.family, code, id, detail, withProject, f.logLines(id))
		}
	}

	for _, mode := range []string{"down", "hang", "500"} {
		t.Run("peer "+mode, func(t *testing.T) {
			px.mode.Store(mode)
			defer px.mode.Store("")
			for _, r := range peerRequests {
				t.Run(r.family, func(t *testing.T) { check(t, r, true, "remote", strings.TrimPrefix(px.URL, "http://")) })
			}
		})
	}

	t.Run("unknown path", func(t *testing.T) {
		tests := []struct {
			name, path, shape string
		}{
			{"nova", "/compute/v2.1/no-such-thing", `"itemNotFound"`},
			{"nova root", "/compute/no-such-thing", `"itemNotFound"`},
			{"cinder", "/volume/v3/no/such/thing", `"itemNotFound"`},
			{"glance", "/image/v2/no-such-thing", `"404 Not Found"`},
			{"neutron", "/network/v2.0/no-such-thing", `"NeutronError"`},
			{"keystone", "/v3/no-such-thing", `"error"`},
			{"v1", "/v1/no-such-thing", `"error"`},
			{"root", "/no-such-thing", `"error"`},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := api(tc.name, "GET", tc.path, "")
				code, _, body := r.do()
				if code != http.StatusNotFound || !strings.Contains(body, tc.shape) {
					t.Fatalf("GET %s = %d %s, want 404 with %s", tc.path, code, body, tc.shape)
				}
				check(t, r, false)
			})
		}
	})

	t.Run("store failure", func(t *testing.T) {
		f.store.InjectFault(func(op registry.Op, key string) error {
			return fmt.Errorf("consul at 127.0.0.1:8500 %s %q: no cluster leader: %w", op, key, registry.ErrUnavailable)
		})
		defer f.store.InjectFault(nil)
		requests := append(peerRequests[:len(peerRequests):len(peerRequests)],
			api("nova", "POST", "/compute/v2.1/os-keypairs", `{"keypair":{"name":"k-store"}}`),
			api("keystone", "POST", "/v3/projects", `{"project":{"name":"p-store"}}`),
			api("v1", "POST", "/v1/index/rebuild", ""),
			api("neutron", "POST", "/network/v2.0/networks", `{"network":{"name":"n-store"}}`),
		)
		for _, r := range requests {
			t.Run(r.family, func(t *testing.T) { check(t, r, false, "no cluster leader") })
		}
	})
}

// remoteResources are resources the front broker made on the remote peer.
type remoteResources struct {
	server, volume, network, ec2Volume string
}

func resourcesOnRemote(t *testing.T, f *frontBroker) remoteResources {
	t.Helper()
	var out remoteResources
	var vol struct{ Volume struct{ ID string } }
	f.mustJSON(t, "POST", "/volume/v3/volumes", `{"volume":{"size":1,"name":"v-remote","availability_zone":"remote"}}`, http.StatusAccepted, &vol)
	out.volume = vol.Volume.ID
	var netw struct{ Network struct{ ID string } }
	f.mustJSON(t, "POST", "/network/v2.0/networks", `{"network":{"name":"n-remote","availability_zone_hints":["remote"]}}`, http.StatusCreated, &netw)
	out.network = netw.Network.ID
	var imgs struct{ Images []struct{ ID string } }
	f.mustJSON(t, "GET", "/image/v2/images?name=cirros-0.6-x86_64-disk", "", http.StatusOK, &imgs)
	if len(imgs.Images) == 0 {
		t.Fatal("the front broker has no seed image")
	}
	var srv struct{ Server struct{ ID string } }
	f.mustJSON(t, "POST", "/compute/v2.1/servers", fmt.Sprintf(`{"server":{"name":"s-remote","flavorRef":"42","imageRef":%q,
		"availability_zone":"remote","networks":"none"}}`, imgs.Images[0].ID), http.StatusAccepted, &srv)
	out.server = srv.Server.ID
	return out
}

// ec2Keys makes EC2 credentials for the admin and finds the EC2 ID of the
// remote volume.
func ec2Keys(t *testing.T, f *frontBroker) ec2.Keys {
	t.Helper()
	code, hdr, raw := f.call(t, "GET", "/v3/auth/tokens", "", map[string]string{"X-Subject-Token": f.token})
	if code != http.StatusOK {
		t.Fatalf("token: %d %s (%v)", code, raw, hdr)
	}
	var tok struct {
		Token struct {
			User    struct{ ID string }
			Project struct{ ID string }
		}
	}
	if err := json.Unmarshal([]byte(raw), &tok); err != nil {
		t.Fatal(err)
	}
	var cred struct {
		Credential struct{ Access, Secret string }
	}
	f.mustJSON(t, "POST", "/v3/users/"+tok.Token.User.ID+"/credentials/OS-EC2", fmt.Sprintf(`{"tenant_id":%q}`, tok.Token.Project.ID),
		http.StatusCreated, &cred)
	return ec2.Keys{AccessKey: cred.Credential.Access, SecretKey: cred.Credential.Secret}
}

// ec2VolumeIn is the EC2 ID of the volume in zone, from DescribeVolumes.
func ec2VolumeIn(t *testing.T, f *frontBroker, keys ec2.Keys, zone string) string {
	t.Helper()
	code, _, raw := f.ec2Call(t, keys, url.Values{"Action": {"DescribeVolumes"}, "Version": {ec2.APIVersion}})
	if code != http.StatusOK {
		t.Fatalf("DescribeVolumes: %d %s", code, raw)
	}
	var out struct {
		Items []struct {
			VolumeID string `xml:"volumeId"`
			Zone     string `xml:"availabilityZone"`
		} `xml:"volumeSet>item"`
	}
	if err := xml.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Items {
		if v.Zone == zone {
			return v.VolumeID
		}
	}
	t.Fatalf("no volume in zone %s: %s", zone, raw)
	return ""
}
