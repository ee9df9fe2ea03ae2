package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

const policyUsage = `Usage:
  cloudmux policy test DIR [-run REGEX] [-v]     run DIR's Rego tests locally, as 'opa test DIR' does
                                                 (fixture peers at data.cloudmux.fixtures)
  cloudmux policy push DIR [-comment TEXT] [-activate]
                                                 upload DIR (*.rego, *_test.rego, *.json/*.yaml data) as a version
  cloudmux policy list [-o table|json]
  cloudmux policy show VERSION|active|stock [-o rego|json] [-write DIR]
  cloudmux policy activate VERSION
  cloudmux policy rollback
  cloudmux policy explain [-kind server] [-vcpus N] [-ram MIB] [-disk GIB] [-az PEER]
                          [-require k=v ...] [-prefer k=v ...] [-image ID] [-f REQUEST.json]
                          [-version V] [-peers PEERS.json] [-o table|json]
  cloudmux policy decisions [-resource ID] [-deployment ID] [-since RFC3339] [-until RFC3339] [-o table|json]

push, list, show, activate and rollback need a cloud admin; explain shows
every peer's verdict, reasons and score for a request without creating
anything.
`

func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("policy "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "test":
		run := fs.String("run", "", "run only tests whose name matches this regular expression")
		verbose := fs.Bool("v", false, "list every test, not only failures")
		if err := parseArgs(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return policyTest(ctx, fs.Arg(0), *run, *verbose, stdout, stderr)
	case "push":
		comment := fs.String("comment", "", "what changed (shown in list)")
		activate := fs.Bool("activate", false, "activate the version once uploaded")
		if err := parseArgs(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		b, err := policy.LoadDir(os.DirFS(fs.Arg(0)))
		if err != nil {
			return exitCode(stderr, err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct {
				Policy struct {
					ID string `json:"id"`
				} `json:"policy"`
				Active *policy.Active `json:"active"`
			}
			body := map[string]any{"modules": b.Modules, "tests": b.Tests, "data": b.Data, "comment": *comment, "activate": *activate}
			status, err := policyDo(ctx, c, http.MethodPost, "/v1/policies/", body, &out)
			if err != nil {
				return err
			}
			what := "uploaded"
			if status == http.StatusOK {
				what = "already stored"
			}
			fmt.Fprintf(stdout, "policy %s %s (%d modules, %d tests)\n", out.Policy.ID, what, len(b.Modules), len(b.Tests))
			if out.Active != nil {
				fmt.Fprintf(stdout, "active: %s\n", out.Active.Version)
			}
			return nil
		})
	case "list", "ls":
		output := fs.String("o", "table", "output: table or json")
		if err := parseFlags(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct {
				Policies []policy.Summary `json:"policies"`
				Active   policy.Active    `json:"active"`
			}
			if _, err := policyDo(ctx, c, http.MethodGet, "/v1/policies/", nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tACTIVE\tCREATED\tBY\tMODULES\tTESTS\tCOMMENT")
			for _, p := range out.Policies {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, map[bool]string{true: "*", false: ""}[p.Active],
					timeOrDash(p.CreatedAt), dash(p.CreatedBy), strings.Join(p.Modules, ","), dash(strings.Join(p.Tests, ",")), dash(p.Comment))
			}
			return tw.Flush()
		})
	case "show":
		output := fs.String("o", "rego", "output: rego (the files) or json")
		write := fs.String("write", "", "write the version's files into this directory (a starting point for your own)")
		if err := parseArgs(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct{ Policy policy.Version }
			if _, err := policyDo(ctx, c, http.MethodGet, "/v1/policies/"+url.PathEscape(fs.Arg(0)), nil, &out); err != nil {
				return err
			}
			if *write != "" {
				return writeBundle(*write, out.Policy.Bundle, stdout)
			}
			if *output == "json" {
				return printJSON(stdout, out.Policy)
			}
			printBundle(stdout, out.Policy)
			return nil
		})
	case "activate":
		if err := parseArgs(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return policySwitch(ctx, stdout, stderr, "/v1/policies/"+url.PathEscape(fs.Arg(0))+"/activate")
	case "rollback":
		if err := parseArgs(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		return policySwitch(ctx, stdout, stderr, "/v1/policies/rollback")
	case "explain":
		return policyExplain(ctx, fs, rest, stdout, stderr)
	case "decisions":
		return policyDecisions(ctx, fs, rest, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "policy: unknown subcommand %q\n\n%s", cmd, policyUsage)
	return 2
}

// policyError is a refused policy, with every position.
type policyError struct {
	Code      int               `json:"code"`
	Title     string            `json:"title"`
	Message   string            `json:"message"`
	Positions []policy.Position `json:"positions"`
	RequestID string            `json:"request_id"`
}

func (e *policyError) Error() string {
	if len(e.Positions) == 0 {
		return fmt.Sprintf("%d %s: %s", e.Code, e.Title, e.Message)
	}
	var b strings.Builder
	kind := "the policy does not compile"
	if strings.HasPrefix(e.Message, policy.ErrTestsFailed.Error()) {
		kind = "the policy's tests fail"
	}
	fmt.Fprintf(&b, "%d %s: %s", e.Code, e.Title, kind)
	for _, p := range e.Positions {
		fmt.Fprintf(&b, "\n  %s", p)
	}
	return b.String()
}

// policyDo is client.do keeping the positions of a refused policy and the
// status of a success (201 created, 200 already there).
func policyDo(ctx context.Context, c *client, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return 0, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the broker at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode >= 300 {
		var eb struct{ Error policyError }
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != 0 {
			return resp.StatusCode, &eb.Error
		}
		return resp.StatusCode, &policyError{Code: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
	}
	if out != nil && len(raw) > 0 {
		return resp.StatusCode, json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

func policySwitch(ctx context.Context, stdout, stderr io.Writer, path string) int {
	return withClient(ctx, stderr, func(c *client) error {
		var out struct{ Active policy.Active }
		if _, err := policyDo(ctx, c, http.MethodPost, path, nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "active: %s (every broker switches as it sees the change)\n", out.Active.Version)
		return nil
	})
}

// policyTest runs DIR's Rego tests with OPA's tester, as `opa test DIR`.
func policyTest(ctx context.Context, dir, run string, verbose bool, stdout, stderr io.Writer) int {
	var filter *regexp.Regexp
	if run != "" {
		var err error
		if filter, err = regexp.Compile(run); err != nil {
			fmt.Fprintf(stderr, "policy test: -run: %v\n", err)
			return 2
		}
	}
	b, err := policy.LoadDir(os.DirFS(dir))
	if err != nil {
		return exitCode(stderr, err)
	}
	if len(b.Modules)+len(b.Tests) == 0 {
		return exitCode(stderr, fmt.Errorf("%s holds no .rego files", dir))
	}
	results, err := policy.RunTests(ctx, b)
	if err != nil {
		if ps := policy.Positions(err); len(ps) > 0 {
			fmt.Fprintln(stderr, "error: the policy does not compile:")
			for _, p := range ps {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
			return 1
		}
		return exitCode(stderr, err)
	}
	pass, fail, skip := 0, 0, 0
	for _, r := range results {
		if filter != nil && !filter.MatchString(r.Package+"."+r.Name) {
			continue
		}
		switch {
		case r.Skip:
			skip++
			if verbose {
				fmt.Fprintf(stdout, "SKIPPED: data.%s.%s\n", r.Package, r.Name)
			}
		case r.Pass:
			pass++
			if verbose {
				fmt.Fprintf(stdout, "%s:%d: data.%s.%s: PASS (%s)\n", r.File, r.Row, r.Package, r.Name, r.Duration)
			}
		default:
			fail++
			fmt.Fprintf(stdout, "%s:%d: data.%s.%s: FAIL (%s)\n", r.File, r.Row, r.Package, r.Name, r.Error)
		}
	}
	fmt.Fprintln(stdout, strings.Repeat("-", 80))
	total := pass + fail + skip
	if pass > 0 {
		fmt.Fprintf(stdout, "PASS: %d/%d\n", pass, total)
	}
	if fail > 0 {
		fmt.Fprintf(stdout, "FAIL: %d/%d\n", fail, total)
		return 1
	}
	if total == 0 {
		fmt.Fprintln(stdout, "no tests found")
		return 1
	}
	return 0
}

func printBundle(w io.Writer, v policy.Version) {
	fmt.Fprintf(w, "# version %s  created %s by %s  %s\n", v.ID, timeOrDash(v.CreatedAt), dash(v.CreatedBy), v.Comment)
	for _, group := range []map[string]string{v.Modules, v.Tests} {
		for _, name := range sortedKeysOf(group) {
			fmt.Fprintf(w, "\n# ---- %s\n%s", name, group[name])
		}
	}
	if len(v.Data) > 0 {
		raw, _ := json.MarshalIndent(v.Data, "", "  ")
		fmt.Fprintf(w, "\n# ---- data.json\n%s\n", raw)
	}
}

func writeBundle(dir string, b policy.Bundle, stdout io.Writer) error {
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if rel, err := filepath.Rel(dir, p); err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("refusing to write %q outside %s", name, dir)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		fmt.Fprintln(stdout, p)
		return os.WriteFile(p, data, 0o644)
	}
	for _, group := range []map[string]string{b.Modules, b.Tests} {
		for name, text := range group {
			if err := write(name, []byte(text)); err != nil {
				return err
			}
		}
	}
	if len(b.Data) > 0 {
		raw, err := json.MarshalIndent(b.Data, "", "  ")
		if err != nil {
			return err
		}
		return write("data.json", append(raw, '\n'))
	}
	return nil
}

func sortedKeysOf(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func policyExplain(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	output := fs.String("o", "table", "output: table or json")
	file := fs.String("f", "", "a JSON file holding the request (input.request's shape); flags override it")
	kind := fs.String("kind", "", "what is placed: server, volume, ... (default server)")
	vcpus := fs.Int("vcpus", -1, "vCPUs")
	ram := fs.Int("ram", -1, "RAM in MiB")
	disk := fs.Int("disk", -1, "disk in GiB (a volume's size)")
	az := fs.String("az", "", "availability zone (a peer name)")
	image := fs.String("image", "", "image ID")
	version := fs.String("version", "", "explain with this policy version instead of the active one (cloud admin)")
	peersFile := fs.String("peers", "", "a JSON file of peer records to explain against instead of the pool (cloud admin)")
	require, prefer := labelFlags{}, labelFlags{}
	fs.Var(require, "require", "required peer label k=v (repeatable)")
	fs.Var(prefer, "prefer", "preferred peer label k=v (repeatable)")
	if err := parseFlags(fs, args, 0); err != nil {
		return usageExit(err)
	}
	var body policyapi.ExplainRequest
	if *file != "" {
		raw, err := os.ReadFile(*file)
		if err != nil {
			return exitCode(stderr, err)
		}
		// Either {"request": {...}} or the request itself.
		if err := json.Unmarshal(raw, &body); err != nil || body.Request.Kind == "" {
			body = policyapi.ExplainRequest{}
			if err := json.Unmarshal(raw, &body.Request); err != nil {
				return exitCode(stderr, fmt.Errorf("%s: %w", *file, err))
			}
		}
	}
	q := &body.Request
	if *kind != "" {
		q.Kind = *kind
	}
	if q.Kind == "" {
		q.Kind = "server"
	}
	for _, f := range []struct {
		v    int
		into *int
	}{{*vcpus, &q.Resources.VCPUs}, {*ram, &q.Resources.RAMMiB}, {*disk, &q.Resources.DiskGiB}} {
		if f.v >= 0 {
			*f.into = f.v
		}
	}
	if *az != "" {
		q.AvailabilityZone = *az
	}
	if *image != "" {
		q.Image = &struct {
			ID         string            `json:"id"`
			Properties map[string]string `json:"properties,omitempty"`
			MinRAMMiB  int               `json:"min_ram_mib,omitempty"`
			MinDiskGiB int               `json:"min_disk_gib,omitempty"`
			Peers      []string          `json:"peers,omitempty"`
		}{ID: *image}
	}
	if len(require) > 0 {
		q.Hints.RequiredLabels = require
	}
	if len(prefer) > 0 {
		q.Hints.PreferredLabels = prefer
	}
	if *version != "" {
		body.Version = *version
	}
	if *peersFile != "" {
		raw, err := os.ReadFile(*peersFile)
		if err != nil {
			return exitCode(stderr, err)
		}
		var ps []registry.Peer
		if err := json.Unmarshal(raw, &ps); err != nil {
			return exitCode(stderr, fmt.Errorf("%s: a JSON array of peer records: %w", *peersFile, err))
		}
		body.Peers = ps
	}
	return withClient(ctx, stderr, func(c *client) error {
		var out struct {
			Decision struct {
				Policy   string                 `json:"policy"`
				Order    []string               `json:"order"`
				Verdicts []policy.VerdictRecord `json:"verdicts"`
			} `json:"decision"`
		}
		if _, err := policyDo(ctx, c, http.MethodPost, "/v1/placement/explain", body, &out); err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, out.Decision)
		}
		fmt.Fprintf(stdout, "policy %s: %s\n", out.Decision.Policy, orderLine(out.Decision.Order))
		printVerdicts(stdout, out.Decision.Verdicts)
		return nil
	})
}

func orderLine(order []string) string {
	if len(order) == 0 {
		return "no peer is allowed"
	}
	return "would try " + strings.Join(order, ", ")
}

func printVerdicts(w io.Writer, vs []policy.VerdictRecord) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tVERDICT\tSCORE\tREASONS")
	for _, v := range vs {
		verdict, score := "denied", "-"
		if v.Allowed {
			verdict, score = "allowed", fmt.Sprint(v.Score)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.PeerName, verdict, score, strings.Join(v.Reasons, "; "))
	}
	_ = tw.Flush()
}

func policyDecisions(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	output := fs.String("o", "table", "output: table or json")
	resource := fs.String("resource", "", "the resource's broker ID")
	deployment := fs.String("deployment", "", "the deployment's ID")
	since := fs.String("since", "", "from this time (RFC 3339)")
	until := fs.String("until", "", "up to this time (RFC 3339)")
	if err := parseFlags(fs, args, 0); err != nil {
		return usageExit(err)
	}
	q := url.Values{}
	for k, v := range map[string]string{"resource": *resource, "deployment": *deployment, "since": *since, "until": *until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return withClient(ctx, stderr, func(c *client) error {
		var out struct {
			Decisions []policy.Record `json:"decisions"`
		}
		if _, err := policyDo(ctx, c, http.MethodGet, "/v1/decisions?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(stdout, out.Decisions)
		}
		if len(out.Decisions) == 0 {
			return errors.New("no decisions match")
		}
		for i, d := range out.Decisions {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "decision %s  %s  policy %s  %s %s  project %s: %s\n", d.ID, d.Timestamp.Format(time.RFC3339),
				d.Policy, d.Kind, dash(d.Resource), d.Project, orderLine(d.Order))
			printVerdicts(stdout, d.Verdicts)
		}
		return nil
	})
}
