package identity_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/ec2credentials"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestEC2Credentials drives /v3/users/{id}/credentials/OS-EC2 with
// gophercloud's ec2credentials client: a member manages their own keys for
// their project, nobody else's; the keys resolve to the member's token and
// stop working when the role goes.
func TestEC2Credentials(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	proj, err := e.dir.CreateProject(ctx, identity.Project{Name: "team-e", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	var users [2]identity.User
	for i, name := range []string{"erin", "frank"} {
		if users[i], err = e.dir.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, name+"-password"); err != nil {
			t.Fatal(err)
		}
		if err := e.dir.Grant(ctx, identity.Assignment{UserID: users[i].ID, ProjectID: proj.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}); err != nil {
			t.Fatal(err)
		}
	}
	erin, frank := users[0], users[1]
	client := func(user string) *gophercloud.ServiceClient {
		p, err := e.login(t, user, user+"-password", "team-e")
		if err != nil {
			t.Fatal(err)
		}
		c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ec, fc := client("erin"), client("frank")

	cred, err := ec2credentials.Create(ctx, ec, erin.ID, ec2credentials.CreateOpts{TenantID: proj.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(cred.Access) != 32 || len(cred.Secret) != 40 || cred.UserID != erin.ID || cred.TenantID != proj.ID {
		t.Fatalf("created %+v", cred)
	}
	pages, err := ec2credentials.List(ec, erin.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := ec2credentials.ExtractCredentials(pages)
	if len(list) != 1 || list[0].Access != cred.Access || list[0].Secret != cred.Secret {
		t.Fatalf("list = %+v", list)
	}
	got, err := ec2credentials.Get(ctx, ec, erin.ID, cred.Access).Extract()
	if err != nil || got.Secret != cred.Secret {
		t.Fatalf("get = %+v, %v", got, err)
	}

	refusals := []struct {
		name string
		call func() error
		code int
	}{
		{"another user's list", func() error { _, err := ec2credentials.List(fc, erin.ID).AllPages(ctx); return err }, http.StatusForbidden},
		{"another user's key", func() error { return ec2credentials.Get(ctx, fc, erin.ID, cred.Access).Err }, http.StatusForbidden},
		{"another user's key under one's own ID", func() error { return ec2credentials.Get(ctx, fc, frank.ID, cred.Access).Err }, http.StatusNotFound},
		{"delete another user's key", func() error { return ec2credentials.Delete(ctx, fc, frank.ID, cred.Access).Err }, http.StatusNotFound},
		{"a project without a role", func() error {
			return ec2credentials.Create(ctx, ec, erin.ID, ec2credentials.CreateOpts{TenantID: e.boot.Project.ID}).Err
		}, http.StatusForbidden},
		{"no such project", func() error {
			return ec2credentials.Create(ctx, ec, erin.ID, ec2credentials.CreateOpts{TenantID: "nope"}).Err
		}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("err = %v; want %d", err, tc.code)
			}
		})
	}

	creds := identity.NewEC2Credentials(e.dir)
	found, err := creds.Lookup(ctx, cred.Access)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := creds.Authorize(ctx, found)
	if err != nil || tok.UserID != erin.ID || tok.ProjectID != proj.ID || !tok.HasRole(identity.RoleMember) || tok.CloudAdmin() {
		t.Fatalf("authorize = %+v, %v", tok, err)
	}
	if err := e.dir.Ungrant(ctx, identity.Assignment{UserID: erin.ID, ProjectID: proj.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Authorize(ctx, found); !errors.Is(err, identity.ErrUnauthorized) {
		t.Fatalf("authorize without a role = %v; want ErrUnauthorized", err)
	}

	// The admin manages anyone's keys.
	ap, err := e.login(t, "admin", adminPassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	ac, _ := openstack.NewIdentityV3(ap, gophercloud.EndpointOpts{})
	if err := ec2credentials.Delete(ctx, ac, erin.ID, cred.Access).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Lookup(ctx, cred.Access); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("lookup after delete = %v", err)
	}
}

// TestEC2CredentialsSealed: with a sealer the store never holds a secret
// in clear, and a record copied under another access key does not open.
func TestEC2CredentialsSealed(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	e := newEnv(t, store)
	sealer, err := registry.NewAESGCM([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	creds := identity.NewEC2Credentials(e.dir).WithSealer(sealer)
	cred, err := creds.Create(ctx, e.boot.User.ID, e.boot.Project.ID)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.Get(ctx, "identity/ec2-credentials/"+cred.Access)
	if err != nil || strings.Contains(string(kv.Value), cred.Secret) {
		t.Fatalf("stored record %q (%v) holds the secret in clear", kv.Value, err)
	}
	got, err := creds.Lookup(ctx, cred.Access)
	if err != nil || got.Secret != cred.Secret {
		t.Fatalf("lookup = %+v, %v", got, err)
	}
	if _, err := store.Put(ctx, "identity/ec2-credentials/moved", kv.Value); err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Lookup(ctx, "moved"); !errors.Is(err, registry.ErrSealed) {
		t.Fatalf("a moved record opened: %v", err)
	}
}
