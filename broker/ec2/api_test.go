package ec2_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

// testEnv is Keystone and the EC2 API over HTTP with two local-cloud peers,
// "alpha" and "beta", plus the services the EC2 API shares with the
// OpenStack APIs, for the tests to look through. The directory reads
// through a running identity.Cache, as the broker's does.
type testEnv struct {
	*brokertest.Env
	api      *ec2.API
	images   *image.Service
	servers  *compute.Servers
	networks *network.Service
	volumes  *volume.Service
	ledger   *quota.Ledger
	index    *index.Index
	keys     *compute.KeypairStore
	creds    *identity.EC2Credentials
	idCache  *identity.Cache
	// counted counts every Store call the EC2 API and the services under
	// it make (newCountedEnv).
	counted *registrytest.CountingStore
}

func newTestEnv(t testing.TB) *testEnv { return buildTestEnv(t, false) }

// newCountedEnv is newTestEnv with every Store call below the EC2 API
// counted, Keystone's own excepted.
func newCountedEnv(t testing.TB) *testEnv { return buildTestEnv(t, true) }

func buildTestEnv(t testing.TB, count bool) *testEnv {
	t.Helper()
	te := &testEnv{}
	te.Env = brokertest.New(t, []brokertest.Peer{{Name: "alpha"}, {Name: "beta"}}, func(e *brokertest.Env, r chi.Router) {
		store := registry.Store(e.Store)
		if count {
			te.counted = registrytest.NewCountingStore(e.Store)
			store = te.counted
		}
		te.idCache = identity.NewCache(store, e.Log)
		e.Dir.UseCache(te.idCache)
		go func() { _ = te.idCache.Run(e.Ctx) }()
		if err := te.idCache.WaitReady(e.Ctx); err != nil {
			t.Fatal(err)
		}
		// The services' records are held in memory, as the broker runs them.
		te.index = index.New(store)
		te.keys = compute.NewKeypairStore(store)
		deactivations := image.NewDeactivations(store, e.Log)
		imageMembers, imageImports := image.NewMembers(store, e.Log), image.NewImports(store, e.Log)
		netAttrs, netGroups := network.NewAttrsMemory(store, e.Log), network.NewGroupsMemory(store, e.Log)
		serverAttrs := compute.NewServerAttrs(store, e.Log)
		volumeAttrs := volume.NewAttrsMemory(store, e.Log)
		e.Start(t, te.index, te.keys, deactivations, imageMembers, imageImports, netAttrs, netGroups, serverAttrs, volumeAttrs)
		te.creds = identity.NewEC2Credentials(e.Dir)
		te.images = &image.Service{Pool: e.Pool, Index: te.index, Placer: policy.Default{}, Store: store, Deactivations: deactivations,
			Members: imageMembers, Imports: imageImports, Log: e.Log, BrokerID: "test-broker"}
		te.networks = &network.Service{Pool: e.Pool, Index: te.index, Store: store, AttrsMemory: netAttrs, GroupsMemory: netGroups, Placer: policy.Default{}, Log: e.Log,
			BrokerID: "test-broker"}
		te.ledger = quota.NewLedger(store, "test-broker", e.Log)
		te.volumes = &volume.Service{Pool: e.Pool, Index: te.index, Placer: policy.Default{}, Images: te.images, Store: store, Attrs: volumeAttrs,
			Log: e.Log, BrokerID: "test-broker", Quota: te.ledger}
		te.servers = &compute.Servers{Pool: e.Pool, Index: te.index, Placer: policy.Default{}, Images: te.images, Keypairs: te.keys,
			Networks: te.networks, Volumes: te.volumes, Store: store, Attrs: serverAttrs, Log: e.Log, BrokerID: "test-broker", Quota: te.ledger}
		te.api = &ec2.API{Pool: e.Pool, Store: store, Creds: te.creds, Keypairs: te.keys, Images: te.images, Servers: te.servers,
			Networks: te.networks, Addresses: te.networks, Volumes: te.volumes, Index: te.index, Placer: policy.Default{}, Log: e.Log, BrokerID: "test-broker"}
		r.Route("/ec2", te.api.Routes)
		go func() { _ = te.api.Run(e.Ctx) }()
		if err := te.api.WaitReady(e.Ctx); err != nil {
			t.Fatal(err)
		}
		cinder := &volume.Cinder{Volumes: te.volumes, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", cinder.Routes)
	})
	return te
}

// keysFor creates EC2 credentials for a user on a project.
func (te *testEnv) keysFor(t testing.TB, user, project string) ec2.Keys {
	t.Helper()
	u, err := te.Dir.FindUser(te.Ctx, identity.DefaultDomainID, user)
	if err != nil {
		t.Fatal(err)
	}
	p, err := te.Dir.FindProject(te.Ctx, identity.DefaultDomainID, project)
	if err != nil {
		t.Fatal(err)
	}
	c, err := te.creds.Create(te.Ctx, u.ID, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ec2.Keys{AccessKey: c.Access, SecretKey: c.Secret}
}

// client signs EC2 Query requests the way the SDKs do.
type client struct {
	t    *testing.T
	url  string
	keys ec2.Keys
	now  func() time.Time
}

func (te *testEnv) client(t *testing.T, keys ec2.Keys) *client {
	return &client{t: t, url: te.Server.URL + "/ec2/", keys: keys, now: time.Now}
}

type apiError struct {
	Status  int
	Code    string `xml:"Errors>Error>Code"`
	Message string `xml:"Errors>Error>Message"`
	ReqID   string `xml:"RequestID"`
}

// raw sends one action and returns the status and body.
func (c *client) raw(action string, params url.Values) (int, []byte) {
	c.t.Helper()
	form := url.Values{"Action": {action}, "Version": {ec2.APIVersion}}
	for k, v := range params {
		form[k] = v
	}
	body := []byte(form.Encode())
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if err := ec2.Sign(req, body, c.keys, "us-east-1", "ec2", c.now()); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// do runs an action and decodes its answer into out, or returns its error.
func (c *client) do(action string, params url.Values, out any) *apiError {
	c.t.Helper()
	status, raw := c.raw(action, params)
	if status != http.StatusOK {
		e := &apiError{Status: status}
		if err := xml.Unmarshal(raw, e); err != nil || e.Code == "" {
			c.t.Fatalf("%s: status %d with a body that is no EC2 error: %s", action, status, raw)
		}
		return e
	}
	if !bytes.Contains(raw, []byte(`<`+action+`Response xmlns="`+ec2.Namespace+`">`)) || !bytes.Contains(raw, []byte("<requestId>req-")) {
		c.t.Fatalf("%s: answer is not in the EC2 namespace with a requestId: %s", action, raw)
	}
	if out != nil {
		if err := xml.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s: %v in %s", action, err, raw)
		}
	}
	return nil
}

// must is do that fails the test on an error.
func (c *client) must(action string, params url.Values, out any) {
	c.t.Helper()
	if e := c.do(action, params, out); e != nil {
		c.t.Fatalf("%s: %d %s: %s", action, e.Status, e.Code, e.Message)
	}
}

func wantCode(t *testing.T, e *apiError, code string) {
	t.Helper()
	if e == nil || e.Code != code {
		t.Fatalf("error = %+v; want %s", e, code)
	}
}

func TestSignatureChecks(t *testing.T) {
	te := newTestEnv(t)
	keys := te.keysFor(t, "admin", "admin")
	good := te.client(t, keys)
	var regions struct {
		Names []string `xml:"regionInfo>item>regionName"`
	}
	good.must("DescribeRegions", nil, &regions)
	if len(regions.Names) != 1 || regions.Names[0] != identity.Region {
		t.Fatalf("regions = %v", regions.Names)
	}

	cases := []struct {
		name   string
		client *client
		code   string
		status int
	}{
		{"wrong secret", &client{t: t, url: good.url, keys: ec2.Keys{AccessKey: keys.AccessKey, SecretKey: "not-the-secret"}, now: time.Now}, "AuthFailure", 401},
		{"unknown access key", &client{t: t, url: good.url, keys: ec2.Keys{AccessKey: "AKIANOTAKEY", SecretKey: keys.SecretKey}, now: time.Now}, "AuthFailure", 401},
		{"date too old", &client{t: t, url: good.url, keys: keys, now: func() time.Time { return time.Now().Add(-20 * time.Minute) }}, "RequestExpired", 400},
		{"date in the future", &client{t: t, url: good.url, keys: keys, now: func() time.Time { return time.Now().Add(20 * time.Minute) }}, "RequestExpired", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.t = t
			e := tc.client.do("DescribeRegions", nil, nil)
			wantCode(t, e, tc.code)
			if e.Status != tc.status || !strings.HasPrefix(e.ReqID, "req-") {
				t.Fatalf("error = %+v; want status %d with a request ID", e, tc.status)
			}
		})
	}

	t.Run("unsigned", func(t *testing.T) {
		resp, err := http.PostForm(good.url, url.Values{"Action": {"DescribeRegions"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 401 || !bytes.Contains(raw, []byte("<Code>MissingAuthenticationToken</Code>")) {
			t.Fatalf("unsigned: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("tampered body", func(t *testing.T) {
		body := []byte("Action=DescribeRegions&Version=" + ec2.APIVersion)
		req, _ := http.NewRequest(http.MethodPost, good.url, nil)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := ec2.Sign(req, body, keys, "RegionOne", "ec2", time.Now()); err != nil {
			t.Fatal(err)
		}
		req.Body = io.NopCloser(strings.NewReader("Action=DescribeAvailabilityZones&Version=" + ec2.APIVersion))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 401 || !bytes.Contains(raw, []byte("<Code>AuthFailure</Code>")) {
			t.Fatalf("tampered: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("presigned GET", func(t *testing.T) {
		u, _ := url.Parse(good.url + "?Action=DescribeAvailabilityZones&Version=" + ec2.APIVersion)
		signed, err := ec2.Presign(http.MethodGet, u, keys, "RegionOne", "ec2", time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(signed.String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Contains(raw, []byte("<zoneName>alpha</zoneName>")) || !bytes.Contains(raw, []byte("<zoneName>beta</zoneName>")) {
			t.Fatalf("presigned: %d %s", resp.StatusCode, raw)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		wantCode(t, good.do("LaunchRockets", nil, nil), "InvalidAction")
	})
	t.Run("a disabled user's keys stop working", func(t *testing.T) {
		te.Member(t, "mallory", "team-m", identity.RoleMember)
		mk := te.keysFor(t, "mallory", "team-m")
		c := te.client(t, mk)
		c.must("DescribeRegions", nil, nil)
		u, _ := te.Dir.FindUser(te.Ctx, identity.DefaultDomainID, "mallory")
		if _, err := te.Dir.UpdateUser(te.Ctx, u.ID, func(u *identity.User) { u.Enabled = false }); err != nil {
			t.Fatal(err)
		}
		wantCode(t, c.do("DescribeRegions", nil, nil), "AuthFailure")
	})
}

type keyPairs struct {
	Names        []string `xml:"keySet>item>keyName"`
	Fingerprints []string `xml:"keySet>item>keyFingerprint"`
}

func TestKeyPairsAreNovas(t *testing.T) {
	te := newTestEnv(t)
	c := te.client(t, te.keysFor(t, "admin", "admin"))
	var created struct {
		Name     string `xml:"keyName"`
		Material string `xml:"keyMaterial"`
		ID       string `xml:"keyPairId"`
	}
	c.must("CreateKeyPair", url.Values{"KeyName": {"k1"}}, &created)
	if !strings.Contains(created.Material, "BEGIN RSA PRIVATE KEY") || !strings.HasPrefix(created.ID, "key-") {
		t.Fatalf("created = %+v", created)
	}
	wantCode(t, c.do("CreateKeyPair", url.Values{"KeyName": {"k1"}}, nil), "InvalidKeyPair.Duplicate")
	public := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ8hcY4pYWVuXmjrwD59bRUptCSy8JWm4ogrBG1bCHB test@example"
	c.must("ImportKeyPair", url.Values{"KeyName": {"k2"}, "PublicKeyMaterial": {encodeB64(public)}}, nil)
	wantCode(t, c.do("ImportKeyPair", url.Values{"KeyName": {"k3"}, "PublicKeyMaterial": {encodeB64("not a key")}}, nil), "InvalidKeyPair.Format")

	var kps keyPairs
	c.must("DescribeKeyPairs", nil, &kps)
	if strings.Join(kps.Names, ",") != "k1,k2" {
		t.Fatalf("key pairs = %v", kps.Names)
	}
	// Nova's os-keypairs reads the same store.
	nova, err := te.keys.List(te.Ctx, te.Boot.User.ID)
	if err != nil || len(nova) != 2 || nova[1].PublicKey != public {
		t.Fatalf("nova's keypairs = %+v, %v", nova, err)
	}
	wantCode(t, c.do("DescribeKeyPairs", url.Values{"KeyName.1": {"nope"}}, nil), "InvalidKeyPair.NotFound")
	kps = keyPairs{}
	c.must("DescribeKeyPairs", url.Values{"Filter.1.Name": {"key-name"}, "Filter.1.Value.1": {"k?"}}, &kps)
	if len(kps.Names) != 2 {
		t.Fatalf("filtered = %v", kps.Names)
	}
	c.must("DeleteKeyPair", url.Values{"KeyName": {"k1"}}, nil)
	c.must("DeleteKeyPair", url.Values{"KeyName": {"k1"}}, nil) // EC2 answers success for a missing one
	kps = keyPairs{}
	c.must("DescribeKeyPairs", nil, &kps)
	if strings.Join(kps.Names, ",") != "k2" {
		t.Fatalf("after delete = %v", kps.Names)
	}
}

type volumes struct {
	Items []struct {
		ID     string   `xml:"volumeId"`
		Size   int      `xml:"size"`
		Zone   string   `xml:"availabilityZone"`
		Status string   `xml:"status"`
		Tags   []string `xml:"tagSet>item>value"`
	} `xml:"volumeSet>item"`
}

func TestVolumesAndTags(t *testing.T) {
	te := newTestEnv(t)
	ctx := context.Background()
	te.Member(t, "bob", "team-b", identity.RoleMember)
	te.Member(t, "rita", "team-b", identity.RoleReader)
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	rita := te.client(t, te.keysFor(t, "rita", "team-b"))

	var created struct {
		ID   string `xml:"volumeId"`
		Zone string `xml:"availabilityZone"`
		Tags []struct {
			Key   string `xml:"key"`
			Value string `xml:"value"`
		} `xml:"tagSet>item"`
	}
	admin.must("CreateVolume", url.Values{"Size": {"2"}, "AvailabilityZone": {"beta"},
		"TagSpecification.1.ResourceType": {"volume"}, "TagSpecification.1.Tag.1.Key": {"Name"}, "TagSpecification.1.Tag.1.Value": {"data"}}, &created)
	if !strings.HasPrefix(created.ID, "vol-") || len(created.ID) != 21 || created.Zone != "beta" || len(created.Tags) != 1 {
		t.Fatalf("created = %+v", created)
	}
	// Cinder's index holds it, named by the tag, with the same broker ID
	// the EC2 ID was derived from.
	entries, err := te.index.List(ctx, "volume", te.Boot.Project.ID)
	if err != nil || len(entries) != 1 || entries[0].Name != "data" {
		t.Fatalf("index = %+v, %v", entries, err)
	}
	var vols volumes
	admin.must("DescribeVolumes", url.Values{"VolumeId.1": {entries[0].ID}}, &vols)
	if len(vols.Items) != 1 || vols.Items[0].ID != created.ID {
		t.Fatalf("by broker UUID = %+v", vols)
	}
	admin.must("CreateTags", url.Values{"ResourceId.1": {created.ID}, "Tag.1.Key": {"env"}, "Tag.1.Value": {"prod"}}, nil)
	vols = volumes{}
	admin.must("DescribeVolumes", url.Values{"Filter.1.Name": {"tag:env"}, "Filter.1.Value.1": {"prod"}}, &vols)
	if len(vols.Items) != 1 || vols.Items[0].Size != 2 || vols.Items[0].Status != "available" || len(vols.Items[0].Tags) != 2 {
		t.Fatalf("described = %+v", vols)
	}
	var tags struct {
		Items []struct {
			ResourceID string `xml:"resourceId"`
			Type       string `xml:"resourceType"`
			Key        string `xml:"key"`
			Value      string `xml:"value"`
		} `xml:"tagSet>item"`
	}
	admin.must("DescribeTags", url.Values{"Filter.1.Name": {"key"}, "Filter.1.Value.1": {"env"}}, &tags)
	if len(tags.Items) != 1 || tags.Items[0].ResourceID != created.ID || tags.Items[0].Type != "volume" || tags.Items[0].Value != "prod" {
		t.Fatalf("tags = %+v", tags)
	}

	// DeleteTags removes a key only where the value matches, when given.
	admin.must("DeleteTags", url.Values{"ResourceId.1": {created.ID}, "Tag.1.Key": {"env"}, "Tag.1.Value": {"staging"}}, nil)
	tags.Items = nil
	admin.must("DescribeTags", url.Values{"Filter.1.Name": {"resource-id"}, "Filter.1.Value.1": {created.ID}}, &tags)
	if len(tags.Items) != 2 {
		t.Fatalf("a value mismatch deleted a tag: %+v", tags)
	}
	admin.must("DeleteTags", url.Values{"ResourceId.1": {created.ID}, "Tag.1.Key": {"env"}}, nil)
	tags.Items = nil
	admin.must("DescribeTags", url.Values{"Filter.1.Name": {"resource-id"}, "Filter.1.Value.1": {created.ID}}, &tags)
	if len(tags.Items) != 1 || tags.Items[0].Key != "Name" {
		t.Fatalf("after DeleteTags: %+v", tags)
	}

	// Another project sees nothing of it and cannot touch it.
	isolation := []struct {
		name, action string
		params       url.Values
		code         string
	}{
		{"describe by ID", "DescribeVolumes", url.Values{"VolumeId.1": {created.ID}}, "InvalidVolume.NotFound"},
		{"delete", "DeleteVolume", url.Values{"VolumeId": {created.ID}}, "InvalidVolume.NotFound"},
		{"tag", "CreateTags", url.Values{"ResourceId.1": {created.ID}, "Tag.1.Key": {"x"}, "Tag.1.Value": {"y"}}, "InvalidVolume.NotFound"},
		{"unknown zone", "CreateVolume", url.Values{"Size": {"1"}, "AvailabilityZone": {"gamma"}}, "InvalidParameterValue"},
		{"bad size", "CreateVolume", url.Values{"Size": {"0"}}, "InvalidParameterValue"},
		{"no size", "CreateVolume", nil, "MissingParameter"},
		{"malformed ID", "DeleteVolume", url.Values{"VolumeId": {"vol-xyz"}}, "InvalidParameterValue"},
	}
	for _, tc := range isolation {
		t.Run(tc.name, func(t *testing.T) {
			bob.t = t
			wantCode(t, bob.do(tc.action, tc.params, nil), tc.code)
		})
	}
	bob.t = t
	vols = volumes{}
	bob.must("DescribeVolumes", nil, &vols)
	if len(vols.Items) != 0 {
		t.Fatalf("bob sees %+v", vols)
	}
	tags.Items = nil
	bob.must("DescribeTags", nil, &tags)
	if len(tags.Items) != 0 {
		t.Fatalf("bob sees tags %+v", tags)
	}
	wantCode(t, rita.do("CreateVolume", url.Values{"Size": {"1"}}, nil), "UnauthorizedOperation")
	rita.must("DescribeVolumes", nil, nil)

	admin.must("DeleteVolume", url.Values{"VolumeId": {created.ID}}, nil)
	vols, tags.Items = volumes{}, nil
	admin.must("DescribeVolumes", nil, &vols)
	admin.must("DescribeTags", nil, &tags)
	if len(vols.Items) != 0 || len(tags.Items) != 0 {
		t.Fatalf("after delete: volumes %+v, tags %+v", vols, tags)
	}
}

func encodeB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
