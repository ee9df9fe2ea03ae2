package focus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
)

const netV1 = `eve_template_version: 1
description: a network
parameters:
  cidr: {type: string, default: 10.0.0.0/24}
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: {get_param: cidr}}}
outputs:
  net_id: {value: {get_resource: net}}
`

const webV1 = `eve_template_version: 1
parameters:
  flavor: {type: string, default: m1.tiny}
resources:
  web: {type: Server, properties: {flavor: {get_param: flavor}, image: cirros}}
`

const webV2 = `eve_template_version: 1
parameters:
  flavor: {type: string, default: m1.small}
  size: {type: number, default: 1}
resources:
  web: {type: Server, properties: {flavor: {get_param: flavor}, image: cirros, networks: [{network: {get_attr: [fabric, net_id]}}]}}
  fabric: {type: "template:net@1", properties: {cidr: 10.9.0.0/24}}
  data: {type: Volume, properties: {size: {get_param: size}}}
`

// inMemory makes newCatalog's catalogs run their Memory
// (TestCatalogInMemory sets it).
var inMemory bool

func newCatalog(t *testing.T) (*Catalog, context.Context) {
	t.Helper()
	c := &Catalog{Store: registry.NewMemory()}
	if inMemory {
		c.Memory = runMemory(t, c.Store.(registry.MirrorStore))
	}
	return c, context.Background()
}

// runMemory runs a catalog memory over store until the test ends.
func runMemory(t *testing.T, store registry.MirrorStore) *Memory {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := NewMemory(store, nil)
	go func() { _ = m.Run(ctx) }()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

func push(t *testing.T, c *Catalog, name, src string) Version {
	t.Helper()
	v, _, err := c.Push(context.Background(), "p1", name, []byte(src), "alice")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPushIsContentAddressed(t *testing.T) {
	c, ctx := newCatalog(t)
	v1, created, err := c.Push(ctx, "p1", "web", []byte(webV1), "alice")
	if err != nil || !created || v1.Version != 1 {
		t.Fatalf("first push: %+v %v %v", v1, created, err)
	}
	again, created, err := c.Push(ctx, "p1", "web", []byte(webV1), "bob")
	if err != nil || created || again.Version != 1 || again.CreatedBy != "alice" {
		t.Fatalf("same content: %+v created=%v %v", again, created, err)
	}
	push(t, c, "net", netV1)
	v2 := push(t, c, "web", webV2)
	if v2.Version != 2 || !slices.Equal(v2.Uses, []string{"net@1"}) {
		t.Fatalf("v2 = %d uses %v", v2.Version, v2.Uses)
	}
	latest, err := c.Get(ctx, "p1", "web", "latest")
	if err != nil || latest.Version != 2 {
		t.Fatalf("latest %d %v", latest.Version, err)
	}
	if _, err := c.Get(ctx, "p1", "web", "9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing version: %v", err)
	}
	list, err := c.List(ctx, "p1")
	if err != nil || len(list) != 2 || list[1].Name != "web" || list[1].Latest != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, _, err := c.Push(ctx, "p1", "Bad Name", []byte(webV1), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, _, err := c.Push(ctx, "p1", "web", []byte("eve_template_version: 1\nresources: {a: {type: Nope}}\n"), ""); !errors.Is(err, templates.ErrInvalid) {
		t.Fatalf("invalid template: %v", err)
	}
	if _, _, err := c.Push(ctx, "p1", "x", []byte("eve_template_version: 1\nresources: {a: {type: \"template:ghost@1\"}}\n"), ""); err == nil {
		t.Fatal("nesting a missing template was accepted")
	}
}

func TestConcurrentPushes(t *testing.T) {
	c, ctx := newCatalog(t)
	var wg sync.WaitGroup
	versions := make([]int, 8)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := webV1
			if i%2 == 1 {
				src = strings.Replace(webV1, "m1.tiny", fmt.Sprintf("m1.tiny%d", i), 1)
			}
			v, _, err := c.Push(ctx, "p1", "web", []byte(src), "")
			if err != nil {
				t.Error(err)
			}
			versions[i] = v.Version
		}()
	}
	wg.Wait()
	all, err := c.Versions(ctx, "p1", "web")
	if err != nil {
		t.Fatal(err)
	}
	// Four distinct contents plus the shared one: five versions, 1..5.
	if len(all) != 5 || all[4].Version != 5 {
		t.Fatalf("%d versions: %+v", len(all), all)
	}
	for i := 2; i < len(versions); i += 2 {
		if versions[i] != versions[0] {
			t.Fatalf("identical pushes got versions %v", versions)
		}
	}
}

func TestDiffAndRelationships(t *testing.T) {
	c, ctx := newCatalog(t)
	push(t, c, "net", netV1)
	push(t, c, "web", webV1)
	push(t, c, "web", webV2)
	changes, err := c.Diff(ctx, "p1", "web", "1", "2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range changes {
		got = append(got, ch.String())
	}
	want := []string{
		"changed parameters.flavor [default]",
		"added parameters.size",
		"added resources.data",
		"added resources.fabric",
		"changed resources.web [properties.networks]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A child extending web@2 and a binding on it.
	child := "eve_template_version: 1\nextends: web@2\nresources:\n  data: {type: Volume, properties: {size: 5}}\n"
	push(t, c, "web-big", child)
	if _, _, err := c.PushBinding(ctx, "p1", "prod", BindingSpec{Template: "web@2", Parameters: map[string]any{"size": 3},
		Placement: map[string]templates.Placement{"web": {Peer: "local"}}}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := c.RecordUse(ctx, "p1", "web@2", "deployment:d-1"); err != nil {
		t.Fatal(err)
	}
	uses, err := c.UsedBy(ctx, "p1", "web", "2", false)
	if err != nil {
		t.Fatal(err)
	}
	wantUses := []Use{{Kind: "binding", Ref: "prod@1"}, {Kind: "deployment", Ref: "d-1"}, {Kind: "template", Ref: "web-big@1"}}
	if !slices.Equal(uses, wantUses) {
		t.Fatalf("used by %+v, want %+v", uses, wantUses)
	}
	if uses, _ := c.UsedBy(ctx, "p1", "net", "1", false); !slices.Equal(uses, []Use{{Kind: "template", Ref: "web@2"}}) {
		t.Fatalf("net@1 used by %+v", uses)
	}

	// Flattening resolves extends and nesting into concrete resources.
	tpl, err := c.For("p1").Resolve(ctx, "web-big", "1")
	if err != nil {
		t.Fatal(err)
	}
	flat, err := templates.Flatten(ctx, tpl, c.For("p1"))
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range flat.Resources {
			if !yield(n) {
				return
			}
		}
	})
	if !slices.Equal(names, []string{"data", "fabric.net", "fabric.subnet", "web"}) {
		t.Fatalf("flattened resources %v", names)
	}
	if got := flat.Resources["data"].Properties["size"]; got != int64(5) {
		t.Fatalf("child override lost: size %v", got)
	}
	if got := flat.Resources["fabric.subnet"].Properties["cidr"]; got != "10.9.0.0/24" {
		t.Fatalf("nested parameter not bound: %v", got)
	}
	nets := flat.Resources["web"].Properties["networks"].([]any)[0].(map[string]any)["network"]
	if templates.Canonical(nets) != `{"get_resource":"fabric.net"}` {
		t.Fatalf("nested output not substituted: %s", templates.Canonical(nets))
	}
	if deps := flat.Dependencies()["web"]; !slices.Equal(deps, []string{"fabric.net"}) {
		t.Fatalf("web deps %v", deps)
	}
}

func TestBindings(t *testing.T) {
	c, ctx := newCatalog(t)
	push(t, c, "web", webV1)
	spec, err := ParseBindingSpec([]byte("template: web\nparameters: {flavor: m1.nano}\nplacement: {web: {required_labels: {tier: gold}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, created, err := c.PushBinding(ctx, "p1", "prod", spec, "alice")
	if err != nil || !created || b.Version != 1 || b.Template != "web@1" || b.Placement["web"].RequiredLabels["tier"] != "gold" {
		t.Fatalf("%+v %v %v", b, created, err)
	}
	again, created, err := c.PushBinding(ctx, "p1", "prod", spec, "bob")
	if err != nil || created || again.Version != 1 {
		t.Fatalf("same binding: %+v %v %v", again, created, err)
	}
	for _, tc := range []struct {
		name string
		spec BindingSpec
		want string
	}{
		{"unknown parameter", BindingSpec{Template: "web@1", Parameters: map[string]any{"flavour": "x"}}, "parameters.flavour: not a parameter"},
		{"unknown resource", BindingSpec{Template: "web@1", Placement: map[string]templates.Placement{"db": {}}}, "placement.db: no such resource"},
		{"missing template", BindingSpec{Template: "nope@1"}, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := c.PushBinding(ctx, "p1", "prod", tc.spec, ""); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	list, err := c.Bindings(ctx, "p1")
	if err != nil || len(list) != 1 || list[0].Name != "prod" {
		t.Fatalf("bindings %+v %v", list, err)
	}
}

func TestProjectsAndPublic(t *testing.T) {
	c, ctx := newCatalog(t)
	admin, a, b := "admin-p", "proj-a", "proj-b"
	if _, _, err := c.Push(ctx, admin, "net", []byte(netV1), "root"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Push(ctx, a, "net", []byte(netV1), "alice"); err != nil {
		t.Fatal(err)
	}
	// a's web nests a's own net@1.
	if _, _, err := c.Push(ctx, a, "web", []byte(webV2), "alice"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		project string
		fn      func(project string) error
		want    error
	}{
		{"b reads a's version", b, func(p string) error { _, err := c.Get(ctx, p, "web", "1"); return err }, ErrNotFound},
		{"b reads a's latest", b, func(p string) error { _, err := c.Get(ctx, p, "web", "latest"); return err }, ErrNotFound},
		{"b lists a's versions", b, func(p string) error {
			vs, err := c.Versions(ctx, p, "web")
			if err == nil && len(vs) != 0 {
				return errors.New("listed")
			}
			return ErrNotFound
		}, ErrNotFound},
		{"b binds a's template", b, func(p string) error {
			_, _, err := c.PushBinding(ctx, p, "prod", BindingSpec{Template: "web@1"}, "")
			return err
		}, ErrNotFound},
		{"b nests a's template", b, func(p string) error {
			_, _, err := c.Push(ctx, p, "x", []byte("eve_template_version: 1\nresources: {a: {type: \"template:web@1\"}}\n"), "")
			return err
		}, ErrNotFound},
		{"b asks who uses a's version", b, func(p string) error { _, err := c.UsedBy(ctx, p, "web", "1", true); return err }, ErrNotFound},
		{"admin publishes what nests a private version", admin, func(p string) error {
			if _, _, err := c.Push(ctx, p, "web", []byte(webV2), "root"); err != nil {
				return err
			}
			_, err := c.Publish(ctx, p, "web", "1", "root")
			return err
		}, ErrInvalid},
		{"a publishes a's own under the admin's public name", a, func(p string) error {
			if _, err := c.Publish(ctx, admin, "net", "1", "root"); err != nil {
				return err
			}
			_, err := c.Publish(ctx, p, "net", "1", "alice")
			return err
		}, ErrInUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(tc.project); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// net@1 of the admin is public: b sees it, a keeps its own.
	got, err := c.Get(ctx, b, "net", "latest")
	if err != nil || !got.Public || got.Project != admin {
		t.Fatalf("b's net: %+v %v", got, err)
	}
	if got, _ := c.Get(ctx, a, "net", "1"); got.Project != a || got.Public {
		t.Fatalf("a's own net shadows the public one: %+v", got)
	}
	if _, err := c.Publish(ctx, admin, "web", "1", "root"); err != nil {
		t.Fatalf("publishing once net@1 is public: %v", err)
	}
	list, err := c.List(ctx, b)
	if err != nil || len(list) != 2 || !list[0].Public || list[1].Name != "web" || !list[1].Public {
		t.Fatalf("b's list: %+v %v", list, err)
	}
	bd, _, err := c.PushBinding(ctx, b, "prod", BindingSpec{Template: "web"}, "bob")
	if err != nil || bd.Template != "web@1" || bd.Project != b {
		t.Fatalf("binding on a public template: %+v %v", bd, err)
	}
	uses, err := c.UsedBy(ctx, admin, "web", "1", true)
	if err != nil || len(uses) != 1 || uses[0].Project != b {
		t.Fatalf("uses of the public version, as the admin sees them: %+v %v", uses, err)
	}
	if uses, _ := c.UsedBy(ctx, a, "web", "1", false); len(uses) != 0 {
		t.Fatalf("a sees its own web's users only: %+v", uses)
	}
}

func TestMigrateLegacy(t *testing.T) {
	c, ctx := newCatalog(t)
	put := func(key string, v any) {
		b, _ := json.Marshal(v)
		if _, err := c.Store.CAS(ctx, key, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	put("focus/templates/web/versions/00000001", Version{Name: "web", Version: 1, Source: webV1})
	put("focus/templates/web/hashes/abc", 1)
	put("focus/bindings/prod/versions/00000001", Binding{Name: "prod", Version: 1, BindingSpec: BindingSpec{Template: "web@1"}})
	if _, err := c.Store.CAS(ctx, "focus/uses/web@1/binding:prod@1", []byte("binding:prod@1"), 0); err != nil {
		t.Fatal(err)
	}
	// Before the migration nobody sees the unowned records.
	if _, err := c.Get(ctx, "admin-p", "web", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before: %v", err)
	}
	for _, tc := range []struct {
		name string
		want MigrationReport
	}{
		{"moves everything to the admin project", MigrationReport{Moved: 4}},
		{"a second run finds nothing", MigrationReport{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := c.MigrateLegacy(ctx, "admin-p")
			if err != nil || rep != tc.want {
				t.Fatalf("%+v %v, want %+v", rep, err, tc.want)
			}
		})
	}
	v, err := c.Get(ctx, "admin-p", "web", "1")
	if err != nil || v.Project != "admin-p" || v.Public {
		t.Fatalf("migrated template: %+v %v", v, err)
	}
	if _, err := c.Get(ctx, "other", "web", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another project sees the migrated template: %v", err)
	}
	if b, err := c.GetBinding(ctx, "admin-p", "prod", "latest"); err != nil || b.Template != "web@1" {
		t.Fatalf("migrated binding: %+v %v", b, err)
	}
	if uses, err := c.UsedBy(ctx, "admin-p", "web", "1", false); err != nil || len(uses) != 1 || uses[0].Ref != "prod@1" {
		t.Fatalf("migrated uses: %+v %v", uses, err)
	}
	if kvs, _, _ := c.Store.List(ctx, "focus/templates/"); len(kvs) != 0 {
		t.Fatalf("legacy keys left: %d", len(kvs))
	}
}

// A broker that died between claiming a content hash and writing its
// version leaves a pending claim; a later push of the same bytes must wait
// for a live claim but take over a stale one, so the content is never
// locked out for good.
func TestPushTakesOverStaleClaim(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration
		wantErr bool
	}{
		{name: "stale claim is taken over", age: staleClaim + time.Second},
		{name: "live claim is waited for", age: time.Second, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ctx := newCatalog(t)
			now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			c.Now = func() time.Time { return now }
			sum := sha256.Sum256([]byte(webV1))
			hk := hashKey("p1", "templates", "web", hex.EncodeToString(sum[:]))
			claim := pendingPrefix + strconv.FormatInt(now.Add(-tt.age).UnixNano(), 10)
			if _, err := c.Store.CAS(ctx, hk, []byte(claim), 0); err != nil {
				t.Fatal(err)
			}
			pushCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			v, created, err := c.Push(pushCtx, "p1", "web", []byte(webV1), "")
			if tt.wantErr {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("push over a live claim: %v (want it to wait)", err)
				}
				return
			}
			if err != nil || !created || v.Version != 1 {
				t.Fatalf("push over a stale claim: %+v %v %v", v, created, err)
			}
			kv, err := c.Store.Get(ctx, hk)
			if err != nil || string(kv.Value) != "1" {
				t.Fatalf("hash now %q %v, want 1", kv.Value, err)
			}
		})
	}
}
