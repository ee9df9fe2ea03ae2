package ec2_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// failingFlavors is a cloud whose flavor list fails.
type failingFlavors struct{ *localcloud.Cloud }

func (failingFlavors) ListFlavors(context.Context) ([]peers.Flavor, error) {
	return nil, errors.New("flavors: backend down")
}

// TestPartialListsAreFlagged: a peer that fails its part of a merged list
// is named in the partial-list header, the others' answer still served.
func TestPartialListsAreFlagged(t *testing.T) {
	var api *ec2.API
	e := brokertest.New(t, []brokertest.Peer{{Name: "alpha"}, {Name: "beta", Wrap: func(c *localcloud.Cloud) peers.Cloud { return failingFlavors{c} }}},
		func(e *brokertest.Env, r chi.Router) {
			idx := index.New(e.Store)
			servers := &compute.Servers{Pool: e.Pool, Index: idx, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "test-broker"}
			api = &ec2.API{Pool: e.Pool, Store: e.Store, Creds: identity.NewEC2Credentials(e.Dir), Keypairs: compute.NewKeypairStore(e.Store),
				Servers: servers, Index: idx, Placer: policy.Default{}, Log: e.Log, BrokerID: "test-broker"}
			r.Route("/ec2", api.Routes)
		})
	cred, err := identity.NewEC2Credentials(e.Dir).Create(e.Ctx, e.Boot.User.ID, e.Boot.Project.ID)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(url.Values{"Action": {"DescribeInstanceTypes"}, "Version": {ec2.APIVersion}}.Encode())
	req, _ := http.NewRequest(http.MethodPost, e.Server.URL+"/ec2/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := ec2.Sign(req, body, ec2.Keys{AccessKey: cred.Access, SecretKey: cred.Secret}, "RegionOne", "ec2", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get(osapi.PartialHeader) != "beta" || !bytes.Contains(raw, []byte("<instanceType>m1.tiny</instanceType>")) {
		t.Fatalf("%d, partial %q: %s", resp.StatusCode, resp.Header.Get(osapi.PartialHeader), raw)
	}
}
