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
	"slices"
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
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
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
	keypair                                                                                       string
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
		ImageRef: te.seeded.ImageID, Networks: []servers.Network{{Port: port.ID}}, Metadata: map[string]string{"owner": "a"}}, KeyName: kp.Name}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	out.server = owned{kind: "server", id: srv.ID, name: "a-server", peerID: te.peerID(t, "server", srv.ID), ec2ID: ec2ID("i", srv.ID)}
	waitServer(t, nova, srv.ID)
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

// openstackProbes are B's requests against A's resources through Nova,
// Glance, Neutron and Cinder.
func openstackProbes(te *tenancyEnv, a aResources) []probe {
	const nova, glance, neutron, cinder = "/compute/v2.1", "/image/v2", "/network/v2.0", "/volume/v3"
	srv, img, net, sn, port, sg, rule, vol := a.server, a.image, a.network, a.subnet, a.port, a.group, a.rule, a.volume
	bSrv := a.bServer.id
	kp := owned{kind: "keypair", id: a.keypair}
	ps := []probe{
		// Nova: servers, their actions, metadata, interfaces, attachments.
		{"show server", srv, "GET", nova + "/servers/{X}", "", 404},
		{"rename server", srv, "PUT", nova + "/servers/{X}", `{"server": {"name": "b-was-here"}}`, 404},
		{"delete server", srv, "DELETE", nova + "/servers/{X}", "", 404},
		{"stop server", srv, "POST", nova + "/servers/{X}/action", `{"os-stop": null}`, 404},
		{"start server", srv, "POST", nova + "/servers/{X}/action", `{"os-start": null}`, 404},
		{"reboot server", srv, "POST", nova + "/servers/{X}/action", `{"reboot": {"type": "HARD"}}`, 404},
		{"console output", srv, "POST", nova + "/servers/{X}/action", `{"os-getConsoleOutput": {}}`, 404},
		{"server ips", srv, "GET", nova + "/servers/{X}/ips", "", 404},
		{"server interfaces", srv, "GET", nova + "/servers/{X}/os-interface", "", 404},
		{"server's interface", srv, "GET", nova + "/servers/{X}/os-interface/" + port.id, "", 404},
		{"A's port as B's server's interface", port, "GET", nova + "/servers/" + bSrv + "/os-interface/{X}", "", 404},
		{"server metadata", srv, "GET", nova + "/servers/{X}/metadata", "", 404},
		{"replace metadata", srv, "PUT", nova + "/servers/{X}/metadata", `{"metadata": {"owner": "b"}}`, 404},
		{"add metadata", srv, "POST", nova + "/servers/{X}/metadata", `{"metadata": {"b": "b"}}`, 404},
		{"metadata item", srv, "GET", nova + "/servers/{X}/metadata/owner", "", 404},
		{"set metadata item", srv, "PUT", nova + "/servers/{X}/metadata/owner", `{"meta": {"owner": "b"}}`, 404},
		{"delete metadata item", srv, "DELETE", nova + "/servers/{X}/metadata/owner", "", 404},
		{"volume attachments", srv, "GET", nova + "/servers/{X}/os-volume_attachments", "", 404},
		{"attachment", srv, "GET", nova + "/servers/{X}/os-volume_attachments/" + vol.id, "", 404},
		{"detach", srv, "DELETE", nova + "/servers/{X}/os-volume_attachments/" + vol.id, "", 404},
		{"attach to A's server", srv, "POST", nova + "/servers/{X}/os-volume_attachments", `{"volumeAttachment": {"volumeId": "` + a.bVolume.id + `"}}`, 404},
		{"attach A's volume", vol, "POST", nova + "/servers/" + bSrv + "/os-volume_attachments", `{"volumeAttachment": {"volumeId": "{X}"}}`, 404},
		{"A's volume as B's attachment", vol, "GET", nova + "/servers/" + bSrv + "/os-volume_attachments/{X}", "", 404},
		{"boot from A's image", img, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "{X}", "networks": "none"}}`, 400},
		{"boot on A's network", net, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": [{"uuid": "{X}"}]}}`, 400},
		{"boot with A's port", port, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": [{"port": "{X}"}]}}`, 400},
		{"boot from A's volume", vol, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [{"boot_index": 0, "uuid": "{X}", "source_type": "volume", "destination_type": "volume"}]}}`, 400},
		{"boot in A's group", sg, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": "none", "security_groups": [{"name": "{X}"}]}}`, 400},
		{"boot with A's keypair", kp, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": "none", "key_name": "{X}"}}`, 400},
		{"show keypair", kp, "GET", nova + "/os-keypairs/{X}", "", 404},
		{"delete keypair", kp, "DELETE", nova + "/os-keypairs/{X}", "", 404},
		{"list servers by name", srv, "GET", nova + "/servers/detail?name={X}", "", 200},
		// Glance.
		{"show image", img, "GET", glance + "/images/{X}", "", 404},
		{"update image", img, "PATCH", glance + "/images/{X}", `[{"op": "replace", "path": "/name", "value": "b-was-here"}]`, 404},
		{"delete image", img, "DELETE", glance + "/images/{X}", "", 404},
		{"download image", img, "GET", glance + "/images/{X}/file", "", 404},
		{"head image file", img, "HEAD", glance + "/images/{X}/file", "", 404},
		{"upload image", img, "PUT", glance + "/images/{X}/file", "BBBB", 404},
		{"add tag", img, "PUT", glance + "/images/{X}/tags/b-tag", "", 404},
		{"remove tag", img, "DELETE", glance + "/images/{X}/tags/a-tag", "", 404},
		{"deactivate", img, "POST", glance + "/images/{X}/actions/deactivate", "", 403},
		{"reactivate", img, "POST", glance + "/images/{X}/actions/reactivate", "", 403},
		{"list images by name", img, "GET", glance + "/images?name={X}", "", 200},
		{"list images by id", img, "GET", glance + "/images?id={X}", "", 200},
		// Neutron.
		{"show network", net, "GET", neutron + "/networks/{X}", "", 404},
		{"update network", net, "PUT", neutron + "/networks/{X}", `{"network": {"name": "b-was-here"}}`, 404},
		{"delete network", net, "DELETE", neutron + "/networks/{X}", "", 404},
		{"list networks by id", net, "GET", neutron + "/networks?id={X}", "", 200},
		{"list networks by name", net, "GET", neutron + "/networks?name={X}", "", 200},
		{"subnet on A's network", net, "POST", neutron + "/subnets", `{"subnet": {"network_id": "{X}", "cidr": "10.99.0.0/24", "ip_version": 4}}`, 404},
		{"port on A's network", net, "POST", neutron + "/ports", `{"port": {"network_id": "{X}"}}`, 404},
		{"show subnet", sn, "GET", neutron + "/subnets/{X}", "", 404},
		{"update subnet", sn, "PUT", neutron + "/subnets/{X}", `{"subnet": {"name": "b-was-here"}}`, 404},
		{"delete subnet", sn, "DELETE", neutron + "/subnets/{X}", "", 404},
		{"list subnets of A's network", net, "GET", neutron + "/subnets?network_id={X}", "", 200},
		{"port on A's subnet", sn, "POST", neutron + "/ports", `{"port": {"network_id": "` + a.bNetwork.id + `", "fixed_ips": [{"subnet_id": "{X}"}]}}`, 400},
		{"show port", port, "GET", neutron + "/ports/{X}", "", 404},
		{"update port", port, "PUT", neutron + "/ports/{X}", `{"port": {"name": "b-was-here"}}`, 404},
		{"delete port", port, "DELETE", neutron + "/ports/{X}", "", 404},
		{"list ports of A's network", net, "GET", neutron + "/ports?network_id={X}", "", 200},
		{"list ports of A's server", srv, "GET", neutron + "/ports?device_id={X}", "", 200},
		{"show group", sg, "GET", neutron + "/security-groups/{X}", "", 404},
		{"update group", sg, "PUT", neutron + "/security-groups/{X}", `{"security_group": {"name": "b-was-here"}}`, 404},
		{"delete group", sg, "DELETE", neutron + "/security-groups/{X}", "", 404},
		{"list groups by name", sg, "GET", neutron + "/security-groups?name={X}", "", 200},
		{"rule in A's group", sg, "POST", neutron + "/security-group-rules", `{"security_group_rule": {"security_group_id": "{X}", "direction": "ingress"}}`, 404},
		{"rule naming A's group", sg, "POST", neutron + "/security-group-rules", `{"security_group_rule": {"security_group_id": "` + a.bGroup.id + `", "direction": "ingress", "remote_group_id": "{X}"}}`, 404},
		{"port in A's group", sg, "POST", neutron + "/ports", `{"port": {"network_id": "` + a.bNetwork.id + `", "security_groups": ["{X}"]}}`, 404},
		{"show rule", rule, "GET", neutron + "/security-group-rules/{X}", "", 404},
		{"delete rule", rule, "DELETE", neutron + "/security-group-rules/{X}", "", 404},
		{"list rules of A's group", sg, "GET", neutron + "/security-group-rules?security_group_id={X}", "", 200},
		// Cinder, with and without the project in the path.
		{"show volume", vol, "GET", cinder + "/volumes/{X}", "", 404},
		{"show volume in B's path", vol, "GET", cinder + "/" + te.bProject + "/volumes/{X}", "", 404},
		{"delete volume", vol, "DELETE", cinder + "/volumes/{X}", "", 404},
		{"extend volume", vol, "POST", cinder + "/volumes/{X}/action", `{"os-extend": {"new_size": 2}}`, 404},
		{"update volume", vol, "PUT", cinder + "/volumes/{X}", `{"volume": {"name": "b-was-here"}}`, 404},
		{"volume metadata", vol, "GET", cinder + "/volumes/{X}/metadata", "", 404},
		{"add volume metadata", vol, "POST", cinder + "/volumes/{X}/metadata", `{"metadata": {"b": "b"}}`, 404},
		{"replace volume metadata", vol, "PUT", cinder + "/volumes/{X}/metadata", `{"metadata": {"b": "b"}}`, 404},
		{"delete volume metadata", vol, "DELETE", cinder + "/volumes/{X}/metadata/owner", "", 404},
		{"list volumes by name", vol, "GET", cinder + "/volumes/detail?name={X}", "", 200},
		{"volume from A's image", img, "POST", cinder + "/volumes", `{"volume": {"size": 1, "imageRef": "{X}"}}`, 400},
	}
	return ps
}

// TestCrossTenantMatrix: project B, a member of its own project with
// resources of its own, gets for every OpenStack, EC2 and /v1 policy
// endpoint the answer it gets for a resource that does not exist when it
// names one of A's, by broker ID, name, the peer's own ID and (for EC2)
// the EC2 ID, and A's resources are untouched afterwards.
// /v1 templates, bindings and deployments have their own matrix
// (templatesapi.TestCrossTenantMatrix).
func TestCrossTenantMatrix(t *testing.T) {
	te := newTenancyEnv(t)
	a := te.makeResources(t)
	before := te.aView(t, a)

	t.Run("openstack", func(t *testing.T) {
		for _, p := range openstackProbes(te, a) {
			t.Run(p.name, func(t *testing.T) { te.checkProbe(t, p) })
		}
	})
	t.Run("ec2", func(t *testing.T) {
		for _, p := range ec2Probes(a) {
			t.Run(p.name, func(t *testing.T) { te.checkEC2Probe(t, p) })
		}
	})
	t.Run("lists", func(t *testing.T) {
		te.checkLists(t, a)
	})
	t.Run("v1", func(t *testing.T) {
		te.checkV1(t, a)
	})
	t.Run("quotas", func(t *testing.T) {
		te.checkQuotas(t)
	})
	t.Run("A's resources untouched", func(t *testing.T) {
		after := te.aView(t, a)
		for path, b := range before {
			if after[path] != b {
				t.Errorf("GET %s changed under B's requests:\nbefore %s\nafter  %s", path, b, after[path])
			}
		}
	})
}

// checkProbe sends p with each ID form of its target and with a lookalike
// that names nothing, and wants both answers the same, with status want.
func (te *tenancyEnv) checkProbe(t *testing.T, p probe) {
	forms := p.target.forms()
	delete(forms, "EC2 ID")
	for _, form := range slices.Sorted(mapsKeys(forms)) {
		x := forms[form]
		t.Run(form, func(t *testing.T) {
			absent := lookalike(x)
			fill := func(s, v string) string { return strings.ReplaceAll(s, "{X}", url.PathEscape(v)) }
			fillBody := func(s, v string) string { return strings.ReplaceAll(s, "{X}", v) }
			want := p.want
			if form == "name" && strings.Contains(p.body, "{X}") && strings.HasPrefix(p.path, "/network/") {
				want = http.StatusBadRequest // Neutron takes IDs in bodies, and says a name is not one
			}
			status, body := te.send(t, p.method, fill(p.path, x), te.bToken, fillBody(p.body, x))
			aStatus, aBody := te.send(t, p.method, fill(p.path, absent), te.bToken, fillBody(p.body, absent))
			if status != want {
				t.Errorf("%s %s = %d %s; want %d", p.method, fill(p.path, x), status, body, want)
			}
			if p.method == http.MethodGet && want == http.StatusNotFound && form == "broker ID" &&
				!slices.ContainsFunc(te.bIDs, func(b string) bool { return strings.Contains(p.path, b) }) {
				if own, body := te.send(t, p.method, fill(p.path, x), te.aToken, ""); own != http.StatusOK {
					t.Errorf("A's own %s %s = %d %s; want 200", p.method, fill(p.path, x), own, body)
				}
			}
			if status != aStatus || normal(body, x) != normal(aBody, absent) {
				t.Errorf("%s %s tells A's resource from none:\nA's:  %d %s\nnone: %d %s", p.method, p.path, status, body, aStatus, aBody)
			}
		})
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// aView is what A reads of its resources, by path.
func (te *tenancyEnv) aView(t *testing.T, a aResources) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, path := range []string{
		"/compute/v2.1/servers/" + a.server.id + "/metadata",
		"/compute/v2.1/servers/" + a.server.id + "/os-volume_attachments",
		"/compute/v2.1/servers/" + a.server.id + "/os-interface",
		"/compute/v2.1/os-keypairs/" + a.keypair,
		"/image/v2/images/" + a.image.id,
		"/network/v2.0/networks/" + a.network.id,
		"/network/v2.0/subnets/" + a.subnet.id,
		"/network/v2.0/ports/" + a.port.id,
		"/network/v2.0/security-groups/" + a.group.id,
		"/volume/v3/volumes/" + a.volume.id,
	} {
		status, body := te.send(t, http.MethodGet, path, te.aToken, "")
		if status != http.StatusOK {
			t.Fatalf("A's GET %s = %d %s", path, status, body)
		}
		out[path] = body
	}
	status, body := te.send(t, http.MethodGet, "/compute/v2.1/servers/"+a.server.id, te.aToken, "")
	if status != http.StatusOK || !strings.Contains(body, `"status":"ACTIVE"`) || !strings.Contains(body, `"name":"a-server"`) {
		t.Fatalf("A's server = %d %s; want it ACTIVE and named a-server", status, body)
	}
	status, body = te.send(t, http.MethodGet, "/image/v2/images/"+a.image.id+"/file", te.aToken, "")
	if status != http.StatusOK || body != strings.Repeat("A", 4096) {
		t.Fatalf("A's image data = %d (%d bytes)", status, len(body))
	}
	return out
}

// ec2Probe is one EC2 action B sends with X standing for an ID of A's.
type ec2Probe struct {
	name   string
	target owned
	action string
	params url.Values // values "{X}" are replaced
	want   int
}

func ec2Probes(a aResources) []ec2Probe {
	x := func(kv ...string) url.Values {
		out := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	srv, img, vol, net, sn, sg := a.server, a.image, a.volume, a.network, a.subnet, a.group
	return []ec2Probe{
		{"describe instances", srv, "DescribeInstances", x("InstanceId.1", "{X}"), 400},
		{"describe instance status", srv, "DescribeInstanceStatus", x("InstanceId.1", "{X}"), 400},
		{"console output", srv, "GetConsoleOutput", x("InstanceId", "{X}"), 400},
		{"start", srv, "StartInstances", x("InstanceId.1", "{X}"), 400},
		{"stop", srv, "StopInstances", x("InstanceId.1", "{X}"), 400},
		{"reboot", srv, "RebootInstances", x("InstanceId.1", "{X}"), 400},
		{"terminate", srv, "TerminateInstances", x("InstanceId.1", "{X}"), 400},
		{"tag instance", srv, "CreateTags", x("ResourceId.1", "{X}", "Tag.1.Key", "k", "Tag.1.Value", "v"), 400},
		{"untag instance", srv, "DeleteTags", x("ResourceId.1", "{X}", "Tag.1.Key", "k"), 400},
		{"describe images", img, "DescribeImages", x("ImageId.1", "{X}"), 400},
		{"deregister image", img, "DeregisterImage", x("ImageId", "{X}"), 400},
		{"run in A's group", sg, "RunInstances", x("ImageId", a.publicAMI, "MinCount", "1", "MaxCount", "1", "SecurityGroupId.1", "{X}"), 400},
		{"run A's image", img, "RunInstances", x("ImageId", "{X}", "MinCount", "1", "MaxCount", "1", "InstanceType", "m1.tiny"), 400},
		{"describe volumes", vol, "DescribeVolumes", x("VolumeId.1", "{X}"), 400},
		{"delete volume", vol, "DeleteVolume", x("VolumeId", "{X}"), 400},
		{"attach A's volume", vol, "AttachVolume", x("VolumeId", "{X}", "InstanceId", a.bServer.ec2ID, "Device", "/dev/vdb"), 400},
		{"attach to A's instance", srv, "AttachVolume", x("VolumeId", a.bVolume.ec2ID, "InstanceId", "{X}", "Device", "/dev/vdb"), 400},
		{"detach A's volume", vol, "DetachVolume", x("VolumeId", "{X}"), 400},
		{"describe vpcs", net, "DescribeVpcs", x("VpcId.1", "{X}"), 400},
		{"delete vpc", net, "DeleteVpc", x("VpcId", "{X}"), 400},
		{"subnet in A's vpc", net, "CreateSubnet", x("VpcId", "{X}", "CidrBlock", "10.98.0.0/24"), 400},
		{"describe subnets", sn, "DescribeSubnets", x("SubnetId.1", "{X}"), 400},
		{"delete subnet", sn, "DeleteSubnet", x("SubnetId", "{X}"), 400},
		{"describe groups", sg, "DescribeSecurityGroups", x("GroupId.1", "{X}"), 400},
		{"delete group", sg, "DeleteSecurityGroup", x("GroupId", "{X}"), 400},
		{"authorize ingress", sg, "AuthorizeSecurityGroupIngress", x("GroupId", "{X}", "IpProtocol", "tcp", "FromPort", "80", "ToPort", "80", "CidrIp", "0.0.0.0/0"), 400},
		{"revoke ingress", sg, "RevokeSecurityGroupIngress", x("GroupId", "{X}", "IpProtocol", "tcp", "FromPort", "22", "ToPort", "22", "CidrIp", "0.0.0.0/0"), 400},
		{"describe keypairs", owned{kind: "keypair", id: a.keypair}, "DescribeKeyPairs", x("KeyName.1", "{X}"), 400},
		{"delete keypair", owned{kind: "keypair", id: a.keypair}, "DeleteKeyPair", x("KeyName", "{X}"), 200},
		{"describe tags", srv, "DescribeTags", x("Filter.1.Name", "resource-id", "Filter.1.Value.1", "{X}"), 200},
	}
}

// checkEC2Probe sends p with each ID form of its target and a lookalike
// naming nothing: the answers must be the same, with status want.
func (te *tenancyEnv) checkEC2Probe(t *testing.T, p ec2Probe) {
	forms := p.target.forms()
	for _, form := range slices.Sorted(mapsKeys(forms)) {
		x := forms[form]
		t.Run(form, func(t *testing.T) {
			absent := lookalike(x)
			fill := func(v string) url.Values {
				out := url.Values{}
				for k, vs := range p.params {
					for _, s := range vs {
						out.Add(k, strings.ReplaceAll(s, "{X}", v))
					}
				}
				return out
			}
			status, body := te.ec2(t, te.bKeys, p.action, fill(x))
			aStatus, aBody := te.ec2(t, te.bKeys, p.action, fill(absent))
			if status != p.want {
				t.Errorf("%s with %s = %d %s; want %d", p.action, x, status, body, p.want)
			}
			if strings.HasPrefix(p.action, "Describe") && p.want != http.StatusOK && (form == "EC2 ID" || p.target.kind == "keypair") {
				if own, body := te.ec2(t, te.aKeys, p.action, fill(x)); own != http.StatusOK {
					t.Errorf("A's own %s with %s = %d %s; want 200", p.action, x, own, body)
				}
			}
			ec2Normal := func(body, probed string) string { return ec2IDs.ReplaceAllString(normal(body, probed), "{ec2-id}") }
			if status != aStatus || ec2Normal(body, x) != ec2Normal(aBody, absent) {
				t.Errorf("%s tells A's resource from none:\nA's:  %d %s\nnone: %d %s", p.action, status, body, aStatus, aBody)
			}
		})
	}
}

// checkLists: none of B's lists, through any API, names any of A's
// resources by any of their IDs or names.
func (te *tenancyEnv) checkLists(t *testing.T, a aResources) {
	var secrets []string
	for _, r := range []owned{a.server, a.image, a.network, a.subnet, a.port, a.group, a.rule, a.volume, {id: a.keypair}} {
		for _, v := range r.forms() {
			secrets = append(secrets, v)
		}
	}
	leaks := func(t *testing.T, what, body string) {
		for _, sec := range secrets {
			if strings.Contains(body, sec) {
				t.Errorf("B's %s names A's %q: %s", what, sec, body)
			}
		}
	}
	for _, path := range []string{
		"/compute/v2.1/servers/detail", "/compute/v2.1/servers/detail?all_tenants=1", "/compute/v2.1/os-keypairs",
		"/image/v2/images", "/network/v2.0/networks", "/network/v2.0/subnets", "/network/v2.0/ports",
		"/network/v2.0/security-groups", "/network/v2.0/security-group-rules", "/volume/v3/volumes/detail",
		"/v1/decisions",
	} {
		t.Run(path, func(t *testing.T) {
			status, body := te.send(t, http.MethodGet, path, te.bToken, "")
			if status != http.StatusOK && status != http.StatusForbidden {
				t.Errorf("B's GET %s = %d %s", path, status, body)
			}
			leaks(t, path, body)
		})
	}
	for _, action := range []string{"DescribeInstances", "DescribeInstanceStatus", "DescribeImages", "DescribeVolumes", "DescribeVpcs",
		"DescribeSubnets", "DescribeSecurityGroups", "DescribeKeyPairs", "DescribeTags"} {
		t.Run(action, func(t *testing.T) {
			status, body := te.ec2(t, te.bKeys, action, nil)
			if status != http.StatusOK {
				t.Errorf("B's %s = %d %s", action, status, body)
			}
			leaks(t, action, body)
		})
	}
}

// checkV1: B's decisions about A's server are those about no server, and
// B may not explain placements for A's project.
func (te *tenancyEnv) checkV1(t *testing.T, a aResources) {
	status, body := te.send(t, http.MethodGet, "/v1/decisions?resource="+a.server.id, te.aToken, "")
	if status != http.StatusOK || !strings.Contains(body, a.server.id) {
		t.Fatalf("A's decisions about its server = %d %s; want the server's placement", status, body)
	}
	for form, x := range a.server.forms() {
		t.Run("decisions "+form, func(t *testing.T) {
			absent := lookalike(x)
			status, body := te.send(t, http.MethodGet, "/v1/decisions?resource="+url.QueryEscape(x), te.bToken, "")
			aStatus, aBody := te.send(t, http.MethodGet, "/v1/decisions?resource="+url.QueryEscape(absent), te.bToken, "")
			if status != http.StatusOK || status != aStatus || normal(body, x) != normal(aBody, absent) {
				t.Errorf("B's decisions about A's server: %d %s; about none: %d %s", status, body, aStatus, aBody)
			}
		})
	}
	t.Run("explain for A's project", func(t *testing.T) {
		req := func(project string) string {
			return `{"request": {"kind": "server", "project": "` + project + `", "flavor": "m1.tiny", "resources": {"vcpus": 1, "ram_mib": 512, "disk_gib": 1}}}`
		}
		absent := lookalike(te.aProject)
		status, body := te.send(t, http.MethodPost, "/v1/placement/explain", te.bToken, req(te.aProject))
		aStatus, aBody := te.send(t, http.MethodPost, "/v1/placement/explain", te.bToken, req(absent))
		if status != http.StatusForbidden || status != aStatus || normal(body, te.aProject) != normal(aBody, absent) {
			t.Errorf("B explaining for A's project: %d %s; for none: %d %s", status, body, aStatus, aBody)
		}
	})
}

// checkQuotas: B reads and changes neither A's quota nor its usage, by
// any quota API, and its own limits say nothing of A's usage.
func (te *tenancyEnv) checkQuotas(t *testing.T) {
	absent := lookalike(te.aProject)
	for _, p := range []struct{ name, method, path, body string }{
		{"nova quota set", "GET", "/compute/v2.1/os-quota-sets/{X}", ""},
		{"nova quota detail", "GET", "/compute/v2.1/os-quota-sets/{X}/detail", ""},
		{"nova quota update", "PUT", "/compute/v2.1/os-quota-sets/{X}", `{"quota_set": {"instances": 1000}}`},
		{"nova quota reset", "DELETE", "/compute/v2.1/os-quota-sets/{X}", ""},
		{"neutron quota", "GET", "/network/v2.0/quotas/{X}", ""},
		{"neutron quota details", "GET", "/network/v2.0/quotas/{X}/details", ""},
		{"neutron quota update", "PUT", "/network/v2.0/quotas/{X}", `{"quota": {"network": 1000}}`},
		{"neutron quota reset", "DELETE", "/network/v2.0/quotas/{X}", ""},
		{"cinder path project", "GET", "/volume/v3/{X}/volumes", ""},
		{"cinder quota set", "GET", "/volume/v3/os-quota-sets/{X}", ""},
		{"cinder quota usage", "GET", "/volume/v3/os-quota-sets/{X}?usage=true", ""},
		{"cinder quota update", "PUT", "/volume/v3/os-quota-sets/{X}", `{"quota_set": {"volumes": 1000}}`},
		{"cinder quota reset", "DELETE", "/volume/v3/os-quota-sets/{X}", ""},
		{"cinder quota in B's path", "GET", "/volume/v3/{B}/os-quota-sets/{X}", ""},
	} {
		t.Run(p.name, func(t *testing.T) {
			path := strings.ReplaceAll(p.path, "{B}", te.bProject)
			status, body := te.send(t, p.method, strings.ReplaceAll(path, "{X}", te.aProject), te.bToken, p.body)
			aStatus, aBody := te.send(t, p.method, strings.ReplaceAll(path, "{X}", absent), te.bToken, p.body)
			if status != http.StatusForbidden || status != aStatus || normal(body, te.aProject) != normal(aBody, absent) {
				t.Errorf("%s %s for A's project: %d %s; for none: %d %s", p.method, p.path, status, body, aStatus, aBody)
			}
		})
	}
	t.Run("B's limits", func(t *testing.T) {
		status, body := te.send(t, http.MethodGet, "/compute/v2.1/limits", te.bToken, "")
		if status != http.StatusOK || !strings.Contains(body, `"totalInstancesUsed":1`) {
			t.Errorf("B's limits = %d %s; want its own one server", status, body)
		}
		status, body = te.send(t, http.MethodGet, "/volume/v3/limits", te.bToken, "")
		if status != http.StatusOK || !strings.Contains(body, `"totalVolumesUsed":1`) || !strings.Contains(body, `"totalGigabytesUsed":1`) {
			t.Errorf("B's volume limits = %d %s; want its own one 1 GiB volume", status, body)
		}
		status, body = te.send(t, http.MethodGet, "/network/v2.0/quotas/"+te.bProject+"/details", te.bToken, "")
		if status != http.StatusOK || !strings.Contains(body, `"network":{"limit":100,"reserved":0,"used":1}`) {
			t.Errorf("B's network quota = %d %s; want its own one network", status, body)
		}
	})
}
