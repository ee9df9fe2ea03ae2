package templates

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEve(t *testing.T) {
	tpl, err := Parse(mustRead(t, "web.eve.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Format != FormatEve || tpl.Version != "1" {
		t.Fatalf("format %s version %q", tpl.Format, tpl.Version)
	}
	if got := tpl.Parameters["replicas"].Type; got != TypeNumber {
		t.Fatalf("replicas type %s", got)
	}
	web := tpl.Resources["web"]
	if web.Kind != KindServer || !web.Placement.Spread || web.Placement.PreferredLabels["tier"] != "gold" {
		t.Fatalf("web = %+v placement %+v", web, web.Placement)
	}
	deps := tpl.Dependencies()
	for name, want := range map[string][]string{
		"subnet": {"net"}, "web": {"net", "subnet"}, "attach": {"data", "web"}, "net": nil,
	} {
		if !slices.Equal(deps[name], want) {
			t.Errorf("deps[%s] = %v, want %v", name, deps[name], want)
		}
	}
	order, err := tpl.Order()
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	if pos["net"] > pos["subnet"] || pos["subnet"] > pos["web"] || pos["web"] > pos["attach"] || pos["data"] > pos["attach"] {
		t.Fatalf("order %v", order)
	}
}

func TestParseHOTFromHeatDocs(t *testing.T) {
	tpl, err := Parse(mustRead(t, "hot_guide_server.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Format != FormatHOT || tpl.Version != "2015-04-30" {
		t.Fatalf("format %s version %q", tpl.Format, tpl.Version)
	}
	for name, kind := range map[string]Kind{"my_key": KindKeypair, "new_net": KindNetwork, "new_subnet": KindSubnet,
		"my_instance": KindServer, "new_volume": KindVolume, "volume_attachment": KindVolumeAttachment} {
		if got := tpl.Resources[name].Kind; got != kind {
			t.Errorf("%s kind %s, want %s", name, got, kind)
		}
	}
	// HOT names map to Eve's.
	att := tpl.Resources["volume_attachment"].Properties
	if _, ok := att["server"]; !ok {
		t.Errorf("instance_uuid not mapped to server: %v", att)
	}
	if _, ok := tpl.Resources["new_subnet"].Properties["network"]; !ok {
		t.Errorf("network_id not mapped to network")
	}
	if !slices.Equal(tpl.Dependencies()["my_instance"], []string{"my_key", "new_net", "new_subnet"}) {
		t.Errorf("my_instance deps %v", tpl.Dependencies()["my_instance"])
	}
	if _, err := tpl.ResolveParameters(nil); err == nil || !strings.Contains(err.Error(), "parameters.image_id: required") {
		t.Fatalf("missing image_id: %v", err)
	}
	if _, err := tpl.ResolveParameters(map[string]any{"image_id": "cirros", "instance_type": "m1.xlarge"}); err == nil ||
		!strings.Contains(err.Error(), "Value must be one of") {
		t.Fatalf("constraint: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	src := `eve_template_version: 1
parameters:
  size: {type: number, default: 50, constraints: [{range: {min: 1, max: 10}}]}
  name: {type: strin}
  pat: {type: string, constraints: [{pattern: "("}]}
resources:
  web:
    type: Server
    depends_on: [ghost]
    properties:
      flavr: m1.tiny
      image: {get_param: nope}
      networks: [{network: {get_resource: web}}]
  vol:
    type: Volume
    properties: {size: big}
  a: {type: Network, depends_on: [b]}
  b: {type: Network, depends_on: [c]}
  c: {type: Network, properties: {name: {get_attr: [a, name]}}}
  x: {type: Widget}
  y: {type: Network, properties: {name: {str_split: [",", "a,b", 0]}}}
outputs:
  o: {value: {get_attr: [vol, colour]}}
`
	_, err := Parse([]byte(src))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"parameters.size.default: 50 is outside [1, 10]",
		"parameters.name.type: unknown type \"strin\"",
		"parameters.pat.constraints[0]: pattern does not compile",
		"resources.web.depends_on[0]: no resource \"ghost\"",
		"resources.web.properties.flavr: unknown property of a Server",
		"resources.web.properties.flavor: required for a Server",
		"resources.web.properties.image.get_param: no parameter \"nope\"",
		"resources.web.properties.networks[0].network.get_resource: a resource cannot refer to itself",
		"resources.vol.properties.size: want an integer, got a string",
		"resources.a: dependency cycle: a -> b -> c -> a",
		"resources.x.type: unknown resource type \"Widget\"",
		"outputs.o.value.get_attr: a Volume has no attribute \"colour\"",
		"resources.y.properties.name.str_split: the str_split function is not supported",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q", w)
		}
	}
	if t.Failed() {
		t.Logf("got:\n%v", err)
	}
	if n := len(Problems(err)); n < len(want) {
		t.Errorf("%d problems, want at least %d", n, len(want))
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"empty", "", "empty document"},
		{"not a mapping", "- a\n- b\n", "not a mapping"},
		{"no version", "resources: {}\n", "no eve_template_version"},
		{"bad yaml", "a: [\n", "did not find"},
		{"duplicate key", "eve_template_version: 1\nresources: {}\nresources: {}\n", "duplicate key"},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
			"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
			"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrSyntax with %q", err, tc.want)
			}
		})
	}
}

func TestEvalFunctions(t *testing.T) {
	tpl, err := Parse(mustRead(t, "web.eve.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	params, err := tpl.ResolveParameters(map[string]any{"replicas": "3", "dns": "1.1.1.1, 9.9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	conds, err := EvalConditions(tpl.Conditions, params)
	if err != nil {
		t.Fatal(err)
	}
	s := &Scope{Params: params, Conditions: conds, Index: 2,
		Resource: func(name string) (any, error) { return "id-of-" + name, nil },
		Attr: func(name, attr string, path []any) (any, error) {
			return Dig(map[string]any{"id": []any{"w0", "w1"}}[attr], path)
		}}
	for _, tc := range []struct {
		name string
		expr any
		want string
	}{
		{"join", tpl.Resources["net"].Properties["name"], "web-net"},
		{"str_replace and index", tpl.Resources["web"].Properties["name"], "web-2"},
		{"if false", tpl.Resources["web"].Properties["flavor"], "m1.tiny"},
		{"get_resource", tpl.Resources["subnet"].Properties["network"], "id-of-net"},
		{"get_attr path", tpl.Resources["attach"].Properties["server"], "w0"},
		{"list param from text", tpl.Resources["subnet"].Properties["dns_nameservers"], "[1.1.1.1 9.9.9.9]"},
		{"list_join many", map[string]any{"list_join": []any{",", []any{"a"}, []any{"b", int64(1)}}}, "a,b,1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Eval(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if g := fmtValue(got); g != tc.want {
				t.Fatalf("got %q, want %q", g, tc.want)
			}
		})
	}
	// Planning: references stay symbolic, and stay equal across plans.
	sym := &Scope{Params: params, Conditions: conds, Index: -1}
	a, err := sym.Eval(tpl.Resources["subnet"].Properties)
	if err != nil {
		t.Fatal(err)
	}
	if a.(map[string]any)["network"] != Symbol("get_resource:net") {
		t.Fatalf("symbolic network = %v", a.(map[string]any)["network"])
	}
}

func fmtValue(v any) string {
	if l, ok := v.([]any); ok {
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = fmtValue(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}

func TestHOTResourceGroupIsACount(t *testing.T) {
	src := `heat_template_version: 2016-10-14
parameters:
  n: {type: number, default: 3}
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: n}
      resource_def:
        type: OS::Nova::Server
        properties: {name: "web-%index%", flavor: m1.tiny, image: cirros, networks: [{uuid: private}]}
outputs:
  ips: {value: {get_attr: [group, first_address]}}
`
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := tpl.Resources["group"]
	if g.Kind != KindServer || Canonical(g.Count) != `{"get_param":"n"}` || g.Properties["name"] != "web-%index%" {
		t.Fatalf("%+v", g)
	}
	if nets := Canonical(g.Properties["networks"]); nets != `[{"network":"private"}]` {
		t.Fatalf("networks %s", nets)
	}
}
