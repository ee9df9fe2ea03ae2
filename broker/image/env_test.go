package image_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// services is the test catalog: the defaults plus the image service.
var services = append(slices.Clone(identity.DefaultServices), identity.ServiceEntry{Type: "image", Name: "glance", Path: "/image"})

// testEnv is brokertest's environment serving Glance, with the local
// clouds behind the peers at hand.
type testEnv struct {
	*brokertest.Env
	Images *image.Service
	mu     sync.Mutex
	clouds map[string]*localcloud.Cloud
}

type envOpts struct {
	// noData names peers served without their image data ability.
	noData  []string
	maxSize int64
	// wrap serves the named peers through a wrapper (a full or stuck cloud).
	wrap        map[string]func(*localcloud.Cloud) peers.Cloud
	peerTimeout time.Duration
}

// newEnv serves Keystone and Glance over local-cloud peers with names.
func newEnv(t testing.TB, opts envOpts, names ...string) *testEnv {
	t.Helper()
	te := &testEnv{clouds: map[string]*localcloud.Cloud{}}
	var ps []brokertest.Peer
	for _, n := range names {
		ps = append(ps, brokertest.Peer{Name: n, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			te.mu.Lock()
			defer te.mu.Unlock()
			te.clouds[n] = c
			if slices.Contains(opts.noData, n) {
				return struct{ peers.Cloud }{c} // hides peers.ImageData
			}
			if w := opts.wrap[n]; w != nil {
				return w(c)
			}
			return c
		}})
	}
	te.Env = brokertest.New(t, ps, func(e *brokertest.Env, r chi.Router) {
		deactivations := image.NewDeactivations(e.Store, e.Log)
		members := image.NewMembers(e.Store, e.Log)
		imports := image.NewImports(e.Store, e.Log)
		e.Start(t, deactivations, members, imports)
		te.Images = &image.Service{Pool: e.Pool, Index: e.Index, Placer: policy.Default{}, Store: e.Store, Deactivations: deactivations, Members: members, Imports: imports,
			Log: e.Log, BrokerID: "test-broker", MaxImageSize: opts.maxSize, PeerTimeout: opts.peerTimeout}
		g := &image.Glance{Images: te.Images, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/image", g.Routes)
		e.Keystone.Catalog = identity.StaticCatalog(services)
	})
	return te
}

func (te *testEnv) cloud(name string) *localcloud.Cloud {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.clouds[name]
}

// client is a gophercloud image client for user on project.
func (te *testEnv) client(t testing.TB, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewImageV2(te.Provider(t, user, password, project), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (te *testEnv) admin(t testing.TB) *gophercloud.ServiceClient {
	return te.client(t, "admin", brokertest.AdminPassword, "admin")
}

// raw sends a request with the client's token, for what gophercloud does
// not offer (tags, actions) or would not send (bad input).
func raw(t *testing.T, c *gophercloud.ServiceClient, method, path, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.ResourceBaseURL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", c.Token())
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// glanceError decodes Glance's error body.
func glanceError(t *testing.T, body []byte) (code, title, message string) {
	t.Helper()
	var e struct{ Code, Title, Message string }
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q is not Glance's JSON: %v", body, err)
	}
	return e.Code, e.Title, e.Message
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

var callerAdmin = image.Caller{Admin: true}
