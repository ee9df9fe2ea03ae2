package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// TestOpsFilesNameRealMetrics: every metric the alert rules and the
// Grafana dashboard in ops/ query is one a broker serves. The names come
// from each component's registered descriptors (complete, whether or not a
// series has been observed yet) and from a running broker's /metrics (the
// HTTP, pool, Go and process metrics serve registers itself).
func TestOpsFilesNameRealMetrics(t *testing.T) {
	known := describedMetrics(t)
	b := startDev(t)
	req, _ := http.NewRequest(http.MethodGet, b.addr+"/compute/v2.1/servers", nil)
	req.Header.Set("X-Auth-Token", b.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(b.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			known[strings.Fields(name)[0]] = true
		}
	}
	// The wiring: what serve registers shows in a scrape once used.
	for _, name := range []string{"cloudmux_http_requests_total", "cloudmux_peers", "cloudmux_peer_probes_total", "cloudmux_peer_probe_seconds"} {
		if !strings.Contains(string(raw), "# TYPE "+name+" ") {
			t.Errorf("a dev broker's /metrics lacks %s", name)
		}
	}

	used := map[string][]string{}
	for _, f := range opsExpressions(t) {
		for _, name := range metricNames(f.expr) {
			if !slices.Contains(used[name], f.where) {
				used[name] = append(used[name], f.where)
			}
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d metric names found in ops/: the extraction is broken", len(used))
	}
	var missing []string
	for name, where := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] && name != "up" {
			missing = append(missing, name+" (in "+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("ops/ queries metrics no broker serves:\n  %s", strings.Join(missing, "\n  "))
	}
}

// recordingRegisterer collects the names of the metrics registered with
// it, from their descriptors.
type recordingRegisterer map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r recordingRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r[m[1]] = true
		}
	}
	return nil
}

func (r recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r recordingRegisterer) Unregister(prometheus.Collector) bool { return true }

// describedMetrics registers every component's metrics, as serve does.
func describedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := recordingRegisterer{}
	if _, err := policy.NewEngine(context.Background(), policy.EngineConfig{Metrics: rec}); err != nil {
		t.Fatal(err)
	}
	deploy.NewMetrics(rec, deploy.NewRecords(registry.NewMemory(), nil))
	cs, err := consul.New(consul.Config{Address: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs.Instrument(rec)
	rec.MustRegister(index.New(registry.NewMemory()).Collector())
	quota.NewMetrics(rec)
	staging.NewMetrics(rec)
	openstack.NewMetrics(rec)
	peers.NewProbeMetrics(rec)
	if _, err := gc.New(gc.Config{Locker: registry.NewMemory(), Metrics: rec}); err != nil {
		t.Fatal(err)
	}
	return rec
}

type opsExpr struct{ where, expr string }

// opsExpressions reads every PromQL expression in ops/: the rules' expr
// and the dashboard's targets and template queries.
func opsExpressions(t *testing.T) []opsExpr {
	t.Helper()
	var out []opsExpr
	rules, err := filepath.Glob("../../ops/prometheus/*.yml")
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files under ops/prometheus: %v", err)
	}
	for _, path := range rules {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert, Record, Expr string
				}
			}
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				out = append(out, opsExpr{filepath.Base(path) + ":" + r.Alert + r.Record, r.Expr})
			}
		}
	}
	raw, err := os.ReadFile("../../ops/grafana/cloudmux.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Name  string
				Query any
			}
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, opsExpr{"dashboard:" + p.Title, tg.Expr})
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			out = append(out, opsExpr{"dashboard variable " + v.Name, strings.TrimSuffix(strings.TrimPrefix(q["query"].(string), "label_values("), ", instance)")})
		}
	}
	return out
}

// metricNames picks the metric names out of a PromQL expression: the
// identifiers that start a selector (followed by '{' or '['), skipping
// label matchers, functions and keywords.
var selector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[)`)

func metricNames(expr string) []string {
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllStringFunc(expr, func(m string) string { return "{}" })
	var out []string
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		if m[1] != "by" && m[1] != "without" {
			out = append(out, m[1])
		}
	}
	// A bare name without a selector: go_goroutines alone, or the
	// argument of label_values(NAME, ...).
	for _, w := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllString(expr, -1) {
		if strings.HasPrefix(w, "cloudmux_") || strings.HasPrefix(w, "go_") || strings.HasPrefix(w, "process_") {
			out = append(out, w)
		}
	}
	return out
}
