package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

func osPeer(name string) registry.Peer {
	return registry.Peer{
		Name:     name,
		Kind:     registry.KindOpenStack,
		Endpoint: registry.Endpoint{AuthURL: "https://keystone.example.test:5000/v3", Region: "RegionOne", Interface: "public"},
		Labels:   map[string]string{"tier": "public", "region": "eu"},
		Cost:     registry.Cost{Currency: "EUR", VCPUHour: 0.02},
	}
}

func osCreds() *registry.Credentials {
	return &registry.Credentials{
		Username: "svc", Password: "hunter2-very-secret", UserDomainName: "Default",
		ProjectName: "cloudmux", ProjectDomainName: "Default",
	}
}

func fieldsOf(err error) []string {
	var out []string
	for _, fe := range registry.FieldErrors(err) {
		out = append(out, fe.Field)
	}
	return out
}

func TestPeerValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*registry.Peer)
		fields []string // every field expected in the error, in order
	}{
		{"valid", func(*registry.Peer) {}, nil},
		{"unknown kind", func(p *registry.Peer) { p.Kind = "vmware" }, []string{"kind"}},
		{"missing name", func(p *registry.Peer) { p.Name = "" }, []string{"name"}},
		{"bad name", func(p *registry.Peer) { p.Name = "-bad name" }, []string{"name"}},
		{"malformed url", func(p *registry.Peer) { p.Endpoint.AuthURL = "keystone:5000" }, []string{"endpoint.auth_url"}},
		{"relative url", func(p *registry.Peer) { p.Endpoint.AuthURL = "/v3" }, []string{"endpoint.auth_url"}},
		{"openstack without auth url", func(p *registry.Peer) { p.Endpoint.AuthURL = "" }, []string{"endpoint.auth_url"}},
		{"local without auth url", func(p *registry.Peer) { p.Kind = registry.KindLocal; p.Endpoint.AuthURL = "" }, nil},
		{"bad interface", func(p *registry.Peer) { p.Endpoint.Interface = "private" }, []string{"endpoint.interface"}},
		{"bad ca", func(p *registry.Peer) { p.Endpoint.CACert = "not a pem" }, []string{"endpoint.ca_cert"}},
		{"bad label key", func(p *registry.Peer) { p.Labels["-x"] = "y" }, []string{"labels.-x"}},
		{"negative capacity", func(p *registry.Peer) { p.Capacity.VCPUs.Total = -1 }, []string{"capacity.vcpus"}},
		{"bad currency", func(p *registry.Peer) { p.Cost.Currency = "euro" }, []string{"cost.currency"}},
		{"bad status", func(p *registry.Peer) { p.Status = "sleepy" }, []string{"status"}},
		{"everything at once", func(p *registry.Peer) {
			p.Name, p.Kind, p.Endpoint.AuthURL, p.Status = "", "aws", "ftp://x", "zzz"
		}, []string{"endpoint.auth_url", "kind", "name", "status"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := osPeer("eu-public")
			tc.mutate(&p)
			err := p.Validate()
			if got := fieldsOf(err); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("Validate fields = %v, want %v (err: %v)", got, tc.fields, err)
			}
			if tc.fields != nil && !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
		})
	}
}

func TestCredentialsValidate(t *testing.T) {
	tests := []struct {
		name   string
		creds  registry.Credentials
		fields []string
	}{
		{"password ok", *osCreds(), nil},
		{"password missing everything", registry.Credentials{}, []string{"credentials.username", "credentials.password"}},
		{"username without domain", registry.Credentials{Username: "u", Password: "p"}, []string{"credentials.user_domain_name"}},
		{"app cred ok", registry.Credentials{AuthType: registry.AuthApplicationCredential, ApplicationCredentialID: "id", ApplicationCredentialSecret: "s"}, nil},
		{"app cred no secret", registry.Credentials{AuthType: registry.AuthApplicationCredential, ApplicationCredentialID: "id"}, []string{"credentials.application_credential_secret"}},
		{"token empty", registry.Credentials{AuthType: registry.AuthToken}, []string{"credentials.token"}},
		{"unknown auth type", registry.Credentials{AuthType: "kerberos"}, []string{"credentials.auth_type"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldsOf(tc.creds.Validate()); fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("fields = %v, want %v", got, tc.fields)
			}
		})
	}
}

func TestCredentialsNeverPrinted(t *testing.T) {
	c := osCreds()
	secret := c.Password
	var logs bytes.Buffer
	log := logrus.New()
	log.SetOutput(&logs)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.WithField("creds", *c).WithField("ptr", c).Info("oops")
	b, _ := json.Marshal(struct{ C registry.Credentials }{*c})
	//lint:ignore S1025 the point is to check what %s prints
	viaS := fmt.Sprintf("%s", c)
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", *c), "%+v": fmt.Sprintf("%+v", *c), "%#v": fmt.Sprintf("%#v", *c),
		"%s ptr": viaS, "json": string(b), "logrus json": logs.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s leaks the password: %s", how, out)
		}
	}
	secretForm, err := registry.MarshalCredentialsSecret(*c)
	if err != nil || !bytes.Contains(secretForm, []byte(secret)) {
		t.Fatalf("MarshalCredentialsSecret lost the password: %s %v", secretForm, err)
	}
	var back registry.Credentials
	if err := json.Unmarshal(secretForm, &back); err != nil || back != *c {
		t.Fatalf("secret form does not round-trip: %v", err)
	}
}

func TestPeerRegistryLifecycle(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)

	p, err := reg.Create(ctx, osPeer("eu-public"), osCreds())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if p.ID == "" || p.Revision == 0 || p.Status != registry.StatusDown || p.CredentialsRef == "" {
		t.Fatalf("Create = %+v; want an ID, a revision, status down and a credentials ref", p)
	}
	rec, _ := store.Get(ctx, registry.PeerRecordPrefix+p.ID)
	if bytes.Contains(rec.Value, []byte("hunter2")) {
		t.Fatalf("the peer record holds the password: %s", rec.Value)
	}

	t.Run("duplicate name", func(t *testing.T) {
		_, err := reg.Create(ctx, osPeer("eu-public"), osCreds())
		if !errors.Is(err, registry.ErrDuplicateName) {
			t.Fatalf("second Create = %v, want ErrDuplicateName", err)
		}
	})
	t.Run("invalid create stores nothing", func(t *testing.T) {
		bad := osPeer("broken")
		bad.Endpoint.AuthURL = "keystone:5000"
		_, err := reg.Create(ctx, bad, nil)
		if got := fieldsOf(err); fmt.Sprint(got) != "[endpoint.auth_url credentials]" {
			t.Fatalf("fields = %v (err %v), want [endpoint.auth_url credentials]", got, err)
		}
		if _, err := reg.Get(ctx, "broken"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("an invalid peer was stored: %v", err)
		}
	})
	t.Run("get by name and id", func(t *testing.T) {
		for _, key := range []string{p.ID, p.Name} {
			got, err := reg.Get(ctx, key)
			if err != nil || got.ID != p.ID {
				t.Fatalf("Get(%q) = %v, %v", key, got.ID, err)
			}
		}
		if _, err := reg.Get(ctx, "no-such-peer"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("Get(missing) = %v", err)
		}
	})
	t.Run("stale update conflicts", func(t *testing.T) {
		upd := p
		upd.Labels = map[string]string{"tier": "public"}
		fresh, err := reg.Update(ctx, upd)
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		stale := p
		stale.Labels = map[string]string{"tier": "lost-update"}
		if _, err := reg.Update(ctx, stale); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("Update at a stale revision = %v, want ErrConflict", err)
		}
		p = fresh
	})
	t.Run("rename moves the name", func(t *testing.T) {
		upd := p
		upd.Name = "eu-public-2"
		got, err := reg.Update(ctx, upd)
		if err != nil {
			t.Fatalf("rename: %v", err)
		}
		p = got
		if _, err := reg.Get(ctx, "eu-public"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("old name still resolves: %v", err)
		}
		if _, err := reg.Create(ctx, osPeer("eu-public"), osCreds()); err != nil {
			t.Fatalf("old name not free after rename: %v", err)
		}
	})
	t.Run("health respects maintenance", func(t *testing.T) {
		upd := p
		upd.Status, upd.StatusReason = registry.StatusMaintenance, "disk swap"
		got, err := reg.Update(ctx, upd)
		if err != nil {
			t.Fatal(err)
		}
		capacity := registry.Capacity{VCPUs: registry.Resource{Total: 64, Used: 3}}
		got, err = reg.ReportHealth(ctx, got.ID, registry.Health{Status: registry.StatusUp, Capacity: &capacity, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != registry.StatusMaintenance || got.Capacity.VCPUs.Total != 64 || got.LastHeartbeat.IsZero() {
			t.Fatalf("after probe: status %s capacity %+v heartbeat %v; want maintenance kept, capacity and heartbeat updated", got.Status, got.Capacity, got.LastHeartbeat)
		}
		p = got
	})
	t.Run("credentials readable only through Credentials", func(t *testing.T) {
		c, err := reg.Credentials(ctx, p)
		if err != nil || c.Password != "hunter2-very-secret" {
			t.Fatalf("Credentials = %v, %v", c.Password != "", err)
		}
		b, _ := json.Marshal(p)
		if bytes.Contains(b, []byte("hunter2")) {
			t.Fatalf("peer JSON leaks the password: %s", b)
		}
	})
	t.Run("delete frees name and credentials", func(t *testing.T) {
		if _, err := reg.Delete(ctx, p.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Get(ctx, p.CredentialsRef); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("credentials survived the peer: %v", err)
		}
		if _, err := reg.Create(ctx, osPeer(p.Name), osCreds()); err != nil {
			t.Fatalf("name not free after delete: %v", err)
		}
	})
}

func TestPeerSnapshotFollowsWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)
	snap := registry.NewPeerSnapshot(store, logrus.New())
	go func() { _ = snap.Run(ctx) }()
	if err := snap.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if snap.View().Len() != 0 {
		t.Fatalf("fresh snapshot has %d peers", snap.View().Len())
	}
	p, err := reg.Create(ctx, osPeer("eu-public"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.WaitIndex(ctx, p.Revision); err != nil {
		t.Fatal(err)
	}
	got, ok := snap.View().Lookup("eu-public")
	if !ok || got.ID != p.ID || got.Revision != p.Revision {
		t.Fatalf("snapshot Lookup = %+v %v; want revision %d", got, ok, p.Revision)
	}
	if _, err := reg.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	for {
		changed := snap.Changed() // before looking, or a change in between is missed
		if snap.View().Len() == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("delete never reached the snapshot")
		}
	}
}

func TestPeerSnapshotSurvivesStoreFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)
	p, err := reg.Create(ctx, osPeer("eu-public"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	snap := registry.NewPeerSnapshot(store, logrus.New())
	go func() { _ = snap.Run(ctx) }()
	if err := snap.WaitIndex(ctx, p.Revision); err != nil {
		t.Fatal(err)
	}
	store.InjectFault(func(op registry.Op, key string) error {
		if op == registry.OpWatch || op == registry.OpList {
			return registry.ErrUnavailable
		}
		return nil
	})
	// Writes still land; the snapshot cannot see them but keeps its view.
	upd := p
	upd.Labels = map[string]string{"tier": "changed"}
	changed, err := reg.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.View().Get(p.ID); !ok {
		t.Fatal("snapshot dropped its peers while the store was failing")
	}
	store.InjectFault(nil)
	if err := snap.WaitIndex(ctx, changed.Revision); err != nil {
		t.Fatalf("snapshot did not recover: %v", err)
	}
	if got, _ := snap.View().Get(p.ID); got.Labels["tier"] != "changed" {
		t.Fatalf("recovered snapshot has labels %v", got.Labels)
	}
}

// TestDeleteWhileProbed: deleting a peer the prober keeps rewriting still
// succeeds (the delete rereads on conflict instead of answering 409).
func TestDeleteWhileProbed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := registry.NewPeerRegistry(registry.NewMemory())
	p, err := reg.Create(ctx, osPeer("busy"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reg.ReportHealth(ctx, p.ID, registry.Health{Status: registry.StatusUp, At: time.Now()}); errors.Is(err, registry.ErrNotFound) {
				return
			}
		}
	}()
	_, err = reg.Delete(ctx, p.ID)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("Delete while probed: %v", err)
	}
	if _, err := reg.Get(ctx, p.ID); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("peer survived its delete: %v", err)
	}
}

// TestProbeLeavesRevision: health lives under its own key, so probes never
// move the record's revision and an admin's CAS edit does not race them.
func TestProbeLeavesRevision(t *testing.T) {
	ctx := context.Background()
	reg := registry.NewPeerRegistry(registry.NewMemory())
	p, err := reg.Create(ctx, osPeer("eu"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	capacity := registry.Capacity{RAMMiB: registry.Resource{Total: 1024}}
	for range 5 {
		if _, err := reg.ReportHealth(ctx, p.ID, registry.Health{Status: registry.StatusUp, Capacity: &capacity, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := reg.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != p.Revision || got.Status != registry.StatusUp || got.Capacity.RAMMiB.Total != 1024 {
		t.Fatalf("after probes: revision %d (was %d), status %s, capacity %+v", got.Revision, p.Revision, got.Status, got.Capacity)
	}
	upd := p
	upd.Labels = map[string]string{"tier": "public"}
	if _, err := reg.Update(ctx, upd); err != nil {
		t.Fatalf("CAS edit at the revision read before the probes: %v", err)
	}
	if _, err := reg.ReportHealth(ctx, "no-such-peer", registry.Health{Status: registry.StatusUp, At: time.Now()}); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("health for a missing peer = %v, want ErrNotFound", err)
	}
}

func TestNameIndexRepairs(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)

	t.Run("stale name does not resolve and is reclaimed", func(t *testing.T) {
		p, err := reg.Create(ctx, osPeer("old-name"), osCreds())
		if err != nil {
			t.Fatal(err)
		}
		upd := p
		upd.Name = "new-name"
		if _, err := reg.Update(ctx, upd); err != nil {
			t.Fatal(err)
		}
		// Simulate a rename whose cleanup of the old name failed.
		if _, err := store.Put(ctx, "peers/names/old-name", []byte(p.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Get(ctx, "old-name"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("a stale name resolved: %v", err)
		}
		if _, err := reg.Create(ctx, osPeer("old-name"), osCreds()); err != nil {
			t.Fatalf("stale name not reclaimed: %v", err)
		}
	})
	t.Run("dangling reservation is reclaimed", func(t *testing.T) {
		// A broker that crashed between reserving the name and writing the record.
		if _, err := store.Put(ctx, "peers/names/orphan", []byte("id-that-never-was")); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Create(ctx, osPeer("orphan"), osCreds()); err != nil {
			t.Fatalf("dangling name not reclaimed: %v", err)
		}
		if _, err := reg.Create(ctx, osPeer("orphan"), osCreds()); !errors.Is(err, registry.ErrDuplicateName) {
			t.Fatalf("a live name was taken over: %v", err)
		}
	})
}

func TestMaintenanceReason(t *testing.T) {
	ctx := context.Background()
	reg := registry.NewPeerRegistry(registry.NewMemory())
	p, err := reg.Create(ctx, osPeer("m"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"disk swap", "still swapping"} {
		upd := p
		upd.Status, upd.StatusReason = registry.StatusMaintenance, reason
		if p, err = reg.Update(ctx, upd); err != nil {
			t.Fatal(err)
		}
		if p.Status != registry.StatusMaintenance || p.StatusReason != reason {
			t.Fatalf("status %s (%s), want maintenance (%s)", p.Status, p.StatusReason, reason)
		}
	}
	upd := p
	upd.Status = registry.StatusUp
	if p, err = reg.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if p.Status != registry.StatusDown || p.StatusReason != "not probed yet" {
		t.Fatalf("after leaving maintenance: %s (%s); want the health view, down (not probed yet)", p.Status, p.StatusReason)
	}
}
