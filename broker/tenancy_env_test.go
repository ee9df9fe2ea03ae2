package broker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/broker/swift"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/policy"
)

// tenancyEnv is every front end of the broker (Nova, Glance, Neutron,
// Cinder, EC2 and the /v1 policy API) over one local-cloud peer, with two
// members of two projects: A owns resources of every kind, B probes them.
type tenancyEnv struct {
	*brokertest.Env
	idx    *index.Index
	objs   *object.Service
	creds  *identity.EC2Credentials
	seeded localcloud.Seeded

	aToken, bToken     string
	aProject, bProject string
	aKeys, bKeys       ec2.Keys
	// bIDs are B's own server and project: a probe naming them is not
	// one A could make.
	bIDs []string
}

const tenancyBroker = "tenancy-broker"

func newTenancyEnv(t *testing.T) *tenancyEnv {
	t.Helper()
	te := &tenancyEnv{}
	te.Env = brokertest.New(t, []brokertest.Peer{{Name: "alpha"}}, func(e *brokertest.Env, r chi.Router) {
		te.idx = index.New(e.Store)
		te.creds = identity.NewEC2Credentials(e.Dir)
		decisions := policy.NewDecisions(e.Store, 0, 0)
		engine, err := policy.NewEngine(e.Ctx, policy.EngineConfig{Versions: policy.NewVersions(e.Store), Decisions: decisions, Log: e.Log})
		if err != nil {
			t.Fatal(err)
		}
		ledger := quota.NewLedger(e.Store, tenancyBroker, e.Log)
		images := &image.Service{Pool: e.Pool, Index: te.idx, Placer: engine, Store: e.Store, Log: e.Log, BrokerID: tenancyBroker}
		nets := &network.Service{Pool: e.Pool, Index: te.idx, Store: e.Store, Placer: engine, Quota: ledger, Log: e.Log, BrokerID: tenancyBroker}
		keys := compute.NewKeypairStore(e.Store)
		keys.Quota = ledger
		vols := &volume.Service{Pool: e.Pool, Index: te.idx, Placer: engine, Images: images, Store: e.Store, Quota: ledger, Log: e.Log, BrokerID: tenancyBroker}
		srvs := &compute.Servers{Pool: e.Pool, Index: te.idx, Placer: engine, Images: images, Networks: nets, Volumes: vols,
			Stager: staging.New(e.Store, tenancyBroker, e.Log), Keypairs: keys, Store: e.Store, Log: e.Log, BrokerID: tenancyBroker,
			Quota: ledger, QuotaAdmin: ledger.Limits.(*quota.Limits)}
		r.Route("/compute", (&compute.Nova{Pool: e.Pool, Keypairs: keys, Servers: srvs, Auth: e.Keystone.Authenticate, Log: e.Log}).Routes)
		r.Route("/image", (&image.Glance{Images: images, Auth: e.Keystone.Authenticate, Log: e.Log}).Routes)
		r.Route("/network", (&network.Neutron{Service: nets, QuotaAdmin: ledger.Limits.(*quota.Limits), Auth: e.Keystone.Authenticate, Log: e.Log}).Routes)
		r.Route("/volume", (&volume.Cinder{Volumes: vols, QuotaAdmin: ledger.Limits.(*quota.Limits), Auth: e.Keystone.Authenticate, Log: e.Log}).Routes)
		r.Route("/ec2", (&ec2.API{Pool: e.Pool, Store: e.Store, Creds: te.creds, Keypairs: keys, Images: images, Servers: srvs,
			Networks: nets, Volumes: vols, Index: te.idx, Placer: engine, Log: e.Log, BrokerID: tenancyBroker}).Routes)
		te.objs = &object.Service{Pool: e.Pool, Placer: engine, Store: e.Store, Log: e.Log}
		r.Route("/swift", (&swift.API{Objects: te.objs, Tokens: e.Keystone.Tokens, Log: e.Log}).Routes)
		r.Route("/v1", (&policyapi.API{Versions: policy.NewVersions(e.Store), Decisions: decisions, Engine: engine,
			Auth: e.Keystone.Authenticate, Log: e.Log, Candidates: policyapi.PoolCandidates(e.Pool)}).Routes)
	})
	seeded, err := te.Pool.Members()[0].Cloud.(*localcloud.Cloud).Seed(te.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	te.seeded = seeded
	te.aToken, te.aProject, te.aKeys = te.member(t, "alice", "proj-a")
	te.bToken, te.bProject, te.bKeys = te.member(t, "bob", "proj-b")
	return te
}

// member makes user a member of project and returns a token, the
// project's ID and EC2 keys.
func (te *tenancyEnv) member(t *testing.T, user, project string) (string, string, ec2.Keys) {
	t.Helper()
	p := te.Provider(t, user, te.Member(t, user, project, identity.RoleMember), project)
	tok, err := te.Keystone.Tokens.Validate(te.Ctx, p.TokenID)
	if err != nil {
		t.Fatal(err)
	}
	c, err := te.creds.Create(te.Ctx, tok.UserID, tok.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	return p.TokenID, tok.ProjectID, ec2.Keys{AccessKey: c.Access, SecretKey: c.Secret}
}

func (te *tenancyEnv) client(t *testing.T, token string, build func(*gophercloud.ProviderClient, gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error)) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.NewClient(te.Server.URL + "/v3")
	if err != nil {
		t.Fatal(err)
	}
	p.SetToken(token)
	// The catalog comes with a token's issue; ask Keystone for it.
	if err := openstack.Authenticate(te.Ctx, p, gophercloud.AuthOptions{IdentityEndpoint: te.Server.URL + "/v3", TokenID: token}); err != nil {
		t.Fatal(err)
	}
	c, err := build(p, gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// send makes one request with token and returns the status and body.
func (te *tenancyEnv) send(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(te.Ctx, method, te.Server.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	switch {
	case strings.HasSuffix(path, "/file"):
		req.Header.Set("Content-Type", "application/octet-stream")
	case method == http.MethodPatch:
		req.Header.Set("Content-Type", "application/openstack-images-v2.1-json-patch")
	default:
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// ec2 sends one signed EC2 action and returns the status and body.
func (te *tenancyEnv) ec2(t *testing.T, keys ec2.Keys, action string, params url.Values) (int, string) {
	t.Helper()
	form := url.Values{"Action": {action}, "Version": {ec2.APIVersion}}
	for k, v := range params {
		form[k] = v
	}
	body := []byte(form.Encode())
	req, err := http.NewRequestWithContext(te.Ctx, http.MethodPost, te.Server.URL+"/ec2/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if err := ec2.Sign(req, body, keys, "us-east-1", "ec2", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// owned is one of A's resources under every name a user might give it.
type owned struct {
	kind   string
	id     string // broker ID
	name   string
	peerID string // the peer's own ID, read from the index ("" if none)
	ec2ID  string // "" when EC2 does not show the kind
}

// forms are the ID forms of r B tries, by name.
func (r owned) forms() map[string]string {
	out := map[string]string{"broker ID": r.id}
	if r.name != "" {
		out["name"] = r.name
	}
	if r.peerID != "" {
		out["peer ID"] = r.peerID
	}
	if r.ec2ID != "" {
		out["EC2 ID"] = r.ec2ID
	}
	return out
}

// lookalike returns a string of s's shape naming nothing: for an ID,
// every hex digit replaced at random, the rest kept (an EC2 ID's prefix,
// dashes, length); for a name, the name with a random suffix.
func lookalike(s string) string {
	const hexDigits = "0123456789abcdef"
	if !uuids.MatchString(s) && !ec2IDs.MatchString(s) && !hexIDs.MatchString(s) {
		return fmt.Sprintf("%s-%08x", s, rand.Uint32())
	}
	b := []byte(s)
	start := 0
	if ec2IDs.MatchString(s) {
		start = strings.IndexByte(s, '-') + 1
	}
	for i, c := range b[start:] {
		i += start
		if strings.IndexByte(hexDigits, c) >= 0 {
			b[i] = hexDigits[rand.IntN(16)]
		}
	}
	if string(b) == s {
		return s + "x"
	}
	return string(b)
}

// ec2IDs are the EC2 API's IDs: it derives one from any UUID it is
// given (a hash of it, naming nothing) and echoes that in its errors.
var ec2IDs = regexp.MustCompile(`\b(i|ami|vol|vpc|subnet|sg)-[0-9a-f]{17}\b`)

var (
	uuids  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	hexIDs = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

var requestIDs = regexp.MustCompile(`req-[0-9a-f-]{36}|<RequestID>[^<]*</RequestID>|<requestId>[^<]*</requestId>`)

// normal is a body with the probed value and request IDs taken out, so
// the answers for A's resource and for one that does not exist compare.
func normal(body, probed string) string {
	return requestIDs.ReplaceAllString(strings.ReplaceAll(body, probed, "{X}"), "{req}")
}

// ec2ID is the EC2 ID the API derives for a broker ID (ids.go: the
// prefix and 17 hex digits of SHA-256("prefix:uuid")).
func ec2ID(prefix, id string) string {
	sum := sha256.Sum256([]byte(prefix + ":" + id))
	return prefix + "-" + hex.EncodeToString(sum[:])[:17]
}

// aResources are A's resources of every kind, made with gophercloud.
type aResources struct {
	server, image, network, subnet, port, group, rule, volume, bServer, bNetwork, bGroup, bVolume owned
	// serverPort is the port A's server's peer made for its NIC on A's
	// network.
	serverPort owned
	keypair    string
	// publicAMI is the seeded public image's EC2 ID, which B may run.
	publicAMI string
}

func (te *tenancyEnv) peerID(t *testing.T, kind, id string) string {
	t.Helper()
	e, err := te.idx.Get(te.Ctx, kind, id, "")
	if err != nil {
		t.Fatalf("index %s %s: %v", kind, id, err)
	}
	return e.PeerResourceID
}

func (te *tenancyEnv) makeResources(t *testing.T) aResources {
	t.Helper()
	ctx := te.Ctx
	nova := te.client(t, te.aToken, openstack.NewComputeV2)
	glance := te.client(t, te.aToken, openstack.NewImageV2)
	neutron := te.client(t, te.aToken, openstack.NewNetworkV2)
	cinder := te.client(t, te.aToken, openstack.NewBlockStorageV3)
	var out aResources

	img, err := images.Create(ctx, glance, images.CreateOpts{Name: "a-private-image", DiskFormat: "raw", ContainerFormat: "bare",
		Visibility: ptr(images.ImageVisibilityPrivate), Tags: []string{"a-tag"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, glance, img.ID, bytes.NewReader(bytes.Repeat([]byte("A"), 4096))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	out.image = owned{kind: "image", id: img.ID, name: img.Name, peerID: te.peerID(t, "image", img.ID), ec2ID: ec2ID("ami", img.ID)}

	net, err := networks.Create(ctx, neutron, networks.CreateOpts{Name: "a-network"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.network = owned{kind: "network", id: net.ID, name: net.Name, peerID: te.peerID(t, "network", net.ID), ec2ID: ec2ID("vpc", net.ID)}
	sn, err := subnets.Create(ctx, neutron, subnets.CreateOpts{NetworkID: net.ID, Name: "a-subnet", CIDR: "192.168.77.0/24", IPVersion: gophercloud.IPv4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.subnet = owned{kind: "subnet", id: sn.ID, name: sn.Name, peerID: te.peerID(t, "subnet", sn.ID), ec2ID: ec2ID("subnet", sn.ID)}
	sg, err := groups.Create(ctx, neutron, groups.CreateOpts{Name: "a-group"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.group = owned{kind: "security_group", id: sg.ID, name: sg.Name, ec2ID: ec2ID("sg", sg.ID)}
	rule, err := rules.Create(ctx, neutron, rules.CreateOpts{SecGroupID: sg.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.rule = owned{kind: "security_group_rule", id: rule.ID}
	port, err := ports.Create(ctx, neutron, ports.CreateOpts{NetworkID: net.ID, Name: "a-port", SecurityGroups: &[]string{sg.ID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.port = owned{kind: "port", id: port.ID, name: port.Name, peerID: te.peerID(t, "port", port.ID)}

	vol, err := volumes.Create(ctx, cinder, volumes.CreateOpts{Size: 1, Name: "a-volume"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.volume = owned{kind: "volume", id: vol.ID, name: vol.Name, peerID: te.peerID(t, "volume", vol.ID), ec2ID: ec2ID("vol", vol.ID)}
	waitVolume(t, cinder, vol.ID, "available")

	kp, err := keypairs.Create(ctx, nova, keypairs.CreateOpts{Name: "a-keypair"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.keypair = kp.Name

	srv, err := servers.Create(ctx, nova, keypairs.CreateOptsExt{CreateOptsBuilder: servers.CreateOpts{Name: "a-server", FlavorRef: "1",
		ImageRef: te.seeded.ImageID, Networks: []servers.Network{{Port: port.ID}, {UUID: net.ID}}, Metadata: map[string]string{"owner": "a"}}, KeyName: kp.Name}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.server = owned{kind: "server", id: srv.ID, name: "a-server", peerID: te.peerID(t, "server", srv.ID), ec2ID: ec2ID("i", srv.ID)}
	waitServer(t, nova, srv.ID)
	pages, err := ports.List(neutron, ports.ListOpts{DeviceID: srv.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nics, _ := ports.ExtractPorts(pages)
	for _, p := range nics {
		if p.ID != port.ID {
			out.serverPort = owned{kind: "server_port", id: p.ID, peerID: te.peerID(t, "server_port", p.ID)}
		}
	}
	if len(nics) != 2 || out.serverPort.id == "" {
		t.Fatalf("A's server's ports = %+v; want a-port and the one its peer made", nics)
	}
	if _, err := volumeattach.Create(ctx, nova, srv.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, cinder, vol.ID, "in-use")

	// B's own server, network, group and volume, the targets of B's
	// attempts to use A's resources.
	bNova := te.client(t, te.bToken, openstack.NewComputeV2)
	bNeutron := te.client(t, te.bToken, openstack.NewNetworkV2)
	bCinder := te.client(t, te.bToken, openstack.NewBlockStorageV3)
	bs, err := servers.Create(ctx, bNova, servers.CreateOpts{Name: "b-server", FlavorRef: "1", ImageRef: te.seeded.ImageID, Networks: "none"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.bServer = owned{kind: "server", id: bs.ID, ec2ID: ec2ID("i", bs.ID)}
	te.bIDs = []string{bs.ID, te.bProject}
	waitServer(t, bNova, bs.ID)
	bn, err := networks.Create(ctx, bNeutron, networks.CreateOpts{Name: "b-network"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.bNetwork = owned{kind: "network", id: bn.ID, ec2ID: ec2ID("vpc", bn.ID)}
	bg, err := groups.Create(ctx, bNeutron, groups.CreateOpts{Name: "b-group"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.bGroup = owned{kind: "security_group", id: bg.ID, ec2ID: ec2ID("sg", bg.ID)}
	bv, err := volumes.Create(ctx, bCinder, volumes.CreateOpts{Size: 1, Name: "b-volume"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.bVolume = owned{kind: "volume", id: bv.ID, ec2ID: ec2ID("vol", bv.ID)}
	waitVolume(t, bCinder, bv.ID, "available")
	// A reads its resources through EC2 as a user would before naming
	// them there: the EC2 IDs are those the API derives.
	for action, want := range map[string]string{"DescribeInstances": out.server.ec2ID, "DescribeImages": out.image.ec2ID,
		"DescribeVolumes": out.volume.ec2ID, "DescribeVpcs": out.network.ec2ID, "DescribeSubnets": out.subnet.ec2ID,
		"DescribeSecurityGroups": out.group.ec2ID} {
		if status, body := te.ec2(t, te.aKeys, action, nil); status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("A's %s = %d %s; want %s in it", action, status, body, want)
		}
	}
	status, body := te.ec2(t, te.bKeys, "DescribeImages", url.Values{"Owner.1": {"admin"}})
	m := regexp.MustCompile(`<imageId>(ami-[0-9a-f]+)</imageId>`).FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("B's public images = %d %s", status, body)
	}
	out.publicAMI = m[1]
	for action, want := range map[string]string{"DescribeInstances": out.bServer.ec2ID, "DescribeVolumes": out.bVolume.ec2ID} {
		if status, body := te.ec2(t, te.bKeys, action, nil); status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("B's %s = %d %s; want %s in it", action, status, body, want)
		}
	}
	return out
}

// waitVolume polls a volume until its status is want.
func waitVolume(t *testing.T, c *gophercloud.ServiceClient, id, want string) {
	t.Helper()
	waitFor(t, func() bool {
		v, err := volumes.Get(context.Background(), c, id).Extract()
		return err == nil && v.Status == want
	})
}

// waitServer polls a server until it is ACTIVE.
func waitServer(t *testing.T, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	waitFor(t, func() bool {
		s, err := servers.Get(context.Background(), c, id).Extract()
		return err == nil && s.Status == "ACTIVE"
	})
}

func ptr[T any](v T) *T { return &v }

// waitFor polls cond, as clients poll a resource's status.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("condition never held")
		}
	}
}

// probe is one request B makes with X standing for an ID form of one of
// A's resources.
type probe struct {
	name   string
	target owned
	method string
	path   string // with {X}
	body   string // with {X}
	// want is the status B must get (the API's not-found, or its
	// refusal); the answer must also equal, but for X, the one for a
	// resource that does not exist.
	want int
}
