package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/credentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/ec2credentials"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestGenericCredentials: /v3/credentials through gophercloud: a user's
// own blobs, admins' view of all, other users refused, and "ec2"
// credentials being the OS-EC2 keys the EC2 API signs with.
func TestGenericCredentials(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	totp, err := credentials.Create(ctx, e.aliceC, credentials.CreateOpts{Type: "totp", Blob: "JBSWY3DPEHPK3PXP", UserID: e.alice.ID}).Extract()
	mustOK(t, "create totp", err)
	ec2, err := credentials.Create(ctx, e.aliceC, credentials.CreateOpts{Type: "ec2", UserID: e.alice.ID, ProjectID: e.proj.ID,
		Blob: `{"access": "AKIAALICE", "secret": "alice-secret"}`}).Extract()
	mustOK(t, "create ec2", err)
	sum := sha256.Sum256([]byte("AKIAALICE"))
	if ec2.ID != hex.EncodeToString(sum[:]) {
		t.Fatalf("ec2 credential ID = %s, want sha256(access) as Keystone", ec2.ID)
	}
	count := func(t *testing.T, c *gophercloud.ServiceClient, opts credentials.ListOpts) int {
		t.Helper()
		pages, err := credentials.List(c, opts).AllPages(ctx)
		mustOK(t, "list", err)
		cs, _ := credentials.ExtractCredentials(pages)
		return len(cs)
	}
	t.Run("ec2 credentials are the OS-EC2 keys", func(t *testing.T) {
		cred, err := e.env.ec2(t).Lookup(ctx, "AKIAALICE")
		if err != nil || cred.Secret != "alice-secret" || cred.ProjectID != e.proj.ID {
			t.Fatalf("EC2 lookup = %+v, %v", cred, err)
		}
		pages, err := ec2credentials.List(e.aliceC, e.alice.ID).AllPages(ctx)
		mustOK(t, "OS-EC2 list", err)
		if ecs, _ := ec2credentials.ExtractCredentials(pages); len(ecs) != 1 || ecs[0].Access != "AKIAALICE" {
			t.Fatalf("OS-EC2 = %+v", ecs)
		}
		os, err := ec2credentials.Create(ctx, e.aliceC, e.alice.ID, ec2credentials.CreateOpts{TenantID: e.proj.ID}).Extract()
		mustOK(t, "OS-EC2 create", err)
		if n := count(t, e.aliceC, credentials.ListOpts{Type: "ec2"}); n != 2 {
			t.Fatalf("ec2 credentials listed = %d, want 2 (one from OS-EC2)", n)
		}
		mustOK(t, "OS-EC2 delete", ec2credentials.Delete(ctx, e.aliceC, e.alice.ID, os.Access).ExtractErr())
	})
	t.Run("owners and admins", func(t *testing.T) {
		cases := []struct {
			name string
			c    *gophercloud.ServiceClient
			opts credentials.ListOpts
			want int
		}{
			{"alice sees hers", e.aliceC, credentials.ListOpts{}, 2},
			{"mallory sees none", e.malC, credentials.ListOpts{}, 0},
			{"the admin sees alice's", e.adminC, credentials.ListOpts{UserID: e.alice.ID}, 2},
			{"by type", e.adminC, credentials.ListOpts{Type: "totp"}, 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if n := count(t, c.c, c.opts); n != c.want {
					t.Fatalf("listed %d, want %d", n, c.want)
				}
			})
		}
	})
	t.Run("refusals", func(t *testing.T) {
		ac, err := applicationcredentials.Create(ctx, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "tool"}).Extract()
		mustOK(t, "application credential", err)
		appC, _ := e.appClient(t, ac.ID, ac.Secret)
		cases := []struct {
			name string
			err  error
			code int
		}{
			{"another user's", credentials.Get(ctx, e.malC, totp.ID).Err, http.StatusNotFound},
			{"for another user", credentials.Create(ctx, e.malC, credentials.CreateOpts{Type: "x", Blob: "y", UserID: e.alice.ID}).Err, http.StatusForbidden},
			{"listing another user's", credentials.List(e.malC, credentials.ListOpts{UserID: e.alice.ID}).EachPage(ctx, nil), http.StatusForbidden},
			{"ec2 on a project without a role", credentials.Create(ctx, e.malC, credentials.CreateOpts{Type: "ec2", UserID: e.mallory.ID,
				ProjectID: e.boot.Project.ID, Blob: `{"access": "AKIAMAL"}`}).Err, http.StatusForbidden},
			{"an ec2 blob that is not JSON", credentials.Create(ctx, e.aliceC, credentials.CreateOpts{Type: "ec2", UserID: e.alice.ID,
				ProjectID: e.proj.ID, Blob: "nope"}).Err, http.StatusBadRequest},
			{"a taken access key", credentials.Create(ctx, e.aliceC, credentials.CreateOpts{Type: "ec2", UserID: e.alice.ID,
				ProjectID: e.proj.ID, Blob: `{"access": "AKIAALICE"}`}).Err, http.StatusConflict},
			{"changing an ec2 credential", credentials.Update(ctx, e.aliceC, ec2.ID, credentials.UpdateOpts{Blob: `{"access": "X"}`}).Err, http.StatusBadRequest},
			{"an application credential's token", credentials.List(appC, nil).EachPage(ctx, nil), http.StatusForbidden},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if !gophercloud.ResponseCodeIs(c.err, c.code) {
					t.Fatalf("err = %v, want %d", c.err, c.code)
				}
			})
		}
	})
	t.Run("update and delete", func(t *testing.T) {
		got, err := credentials.Update(ctx, e.aliceC, totp.ID, credentials.UpdateOpts{Blob: "NEWSECRET"}).Extract()
		if err != nil || got.Blob != "NEWSECRET" {
			t.Fatalf("update = %+v, %v", got, err)
		}
		mustOK(t, "delete ec2", credentials.Delete(ctx, e.aliceC, ec2.ID).ExtractErr())
		if _, err := e.env.ec2(t).Lookup(ctx, "AKIAALICE"); err == nil {
			t.Fatal("deleted ec2 credential still signs")
		}
		mustOK(t, "delete totp", credentials.Delete(ctx, e.adminC, totp.ID).ExtractErr())
		if n := count(t, e.aliceC, credentials.ListOpts{}); n != 0 {
			t.Fatalf("left %d", n)
		}
	})
}

func (e *env) ec2(t *testing.T) *identity.EC2Credentials {
	t.Helper()
	return identity.NewEC2Credentials(e.dir)
}
