package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

const templateUsage = `Usage:
  cloudmux template push NAME FILE          store FILE (Eve or HOT) as NAME's next version
  cloudmux template list [-o table|json]
  cloudmux template show NAME[@VERSION] [-o table|json|source]
  cloudmux template diff NAME FROM TO       what changed between two versions
  cloudmux template used-by NAME@VERSION    templates, bindings and deployments using it
  cloudmux template publish NAME@VERSION    make a version public: every project may read,
                                            deploy and nest it (cloud admins only)

Templates and bindings belong to your project. A name resolves to your
project's template of that name, else to a public one. Values of hidden
parameters are shown as ******.
`

const bindingUsage = `Usage:
  cloudmux binding push NAME FILE           store a binding document as NAME's next version
  cloudmux binding list [-o table|json]
  cloudmux binding show NAME[@VERSION] [-o table|json]

A binding document (YAML):
  template: web@2
  parameters: {flavor: m1.small}
  placement: {db: {peer: local}, web: {required_labels: {tier: gold}}}
`

const deployUsage = `Usage:
  cloudmux deploy plan   SOURCE [-id ID] [-p k=v ...] [-o table|json]
  cloudmux deploy apply  SOURCE [-name N] [-p k=v ...] [-keep-on-failure] [-detach]
  cloudmux deploy update ID SOURCE [-p k=v ...] [-detach]
  cloudmux deploy list   [-o table|json]
  cloudmux deploy show   ID [-o table|json]
  cloudmux deploy events ID [-follow]
  cloudmux deploy delete ID [-detach]
  cloudmux deploy retry  ID [-detach]

SOURCE is -template NAME[@VERSION], -binding NAME[@VERSION] or -f FILE.
plan -id ID plans an update of deployment ID instead of a new deployment.
apply, update, delete and retry follow the deployment until it settles
(a live display on a terminal, one line per event otherwise) unless -detach.
`

// problemError shows the API's error body, every template problem on its
// own line.
func problemError(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || !strings.HasPrefix(strings.TrimSpace(ae.Message), "{") {
		return err
	}
	var body map[string]struct {
		Message  string
		Problems []templates.Problem
	}
	if json.Unmarshal([]byte(ae.Message), &body) != nil {
		return err
	}
	for _, b := range body {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%d %s", ae.Code, ae.Title)
		if len(b.Problems) == 0 {
			fmt.Fprintf(&sb, ": %s", b.Message)
		}
		for _, p := range b.Problems {
			fmt.Fprintf(&sb, "\n  - %s: %s", p.Path, p.Reason)
		}
		return errors.New(sb.String())
	}
	return err
}

func withAPI(ctx context.Context, stderr io.Writer, fn func(*client) error) int {
	return withClient(ctx, stderr, func(c *client) error { return problemError(fn(c)) })
}

func splitRef(ref string) (name, version string) {
	name, version, _ = strings.Cut(ref, "@")
	if version == "" {
		version = "latest"
	}
	return name, version
}

func runTemplate(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, templateUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("template "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "table", "output: table or json")
	switch cmd {
	case "push":
		if err := parseFlags(fs, rest, 2); err != nil {
			return usageExit(err)
		}
		data, err := os.ReadFile(fs.Arg(1))
		if err != nil {
			return exitCode(stderr, err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct {
				Template focus.Version
				Created  bool
			}
			if err := c.do(ctx, http.MethodPost, "/v1/templates/"+url.PathEscape(fs.Arg(0))+"/versions", data, &out); err != nil {
				return err
			}
			note := "new version"
			if !out.Created {
				note = "unchanged: that content is already this version"
			}
			fmt.Fprintf(stdout, "%s (%s)\n", out.Template.Ref(), note)
			return nil
		})
	case "list", "ls":
		if err := parseFlags(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Templates []focus.Summary }
			if err := c.do(ctx, http.MethodGet, "/v1/templates/", nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out.Templates)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tLATEST\tPUBLIC\tUPDATED\tDESCRIPTION")
			for _, s := range out.Templates {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Latest, yesNo(s.Public), s.UpdatedAt.Format(time.RFC3339), firstLine(s.Description))
			}
			return tw.Flush()
		})
	case "show":
		if err := parseArgs(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		name, version := splitRef(fs.Arg(0))
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Template focus.Version }
			if err := c.do(ctx, http.MethodGet, "/v1/templates/"+url.PathEscape(name)+"/versions/"+url.PathEscape(version), nil, &out); err != nil {
				return err
			}
			switch *output {
			case "json":
				return printJSON(stdout, out.Template)
			case "source":
				_, err := io.WriteString(stdout, out.Template.Source)
				return err
			}
			v := out.Template
			fmt.Fprintf(stdout, "%s\nformat:  %s\nhash:    %s\ncreated: %s by %s\n", v.Ref(), v.Format, v.Hash, v.CreatedAt.Format(time.RFC3339), v.CreatedBy)
			if len(v.Uses) > 0 {
				fmt.Fprintf(stdout, "uses:    %s\n", strings.Join(v.Uses, ", "))
			}
			if v.Public {
				fmt.Fprintln(stdout, "public:  yes (every project may use it)")
			}
			fmt.Fprintf(stdout, "\n%s", v.Source)
			return nil
		})
	case "diff":
		if err := parseFlags(fs, rest, 3); err != nil {
			return usageExit(err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Changes []templates.Change }
			q := url.Values{"from": {fs.Arg(1)}, "to": {fs.Arg(2)}}
			if err := c.do(ctx, http.MethodGet, "/v1/templates/"+url.PathEscape(fs.Arg(0))+"/diff?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out.Changes)
			}
			if len(out.Changes) == 0 {
				fmt.Fprintln(stdout, "no changes")
			}
			for _, ch := range out.Changes {
				sign := map[string]string{"added": "+", "removed": "-", "changed": "~"}[ch.Op]
				fmt.Fprintf(stdout, "%s %s.%s", sign, ch.Section, ch.Name)
				if len(ch.Fields) > 0 {
					fmt.Fprintf(stdout, " (%s)", strings.Join(ch.Fields, ", "))
				}
				fmt.Fprintln(stdout)
			}
			return nil
		})
	case "used-by":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		name, version := splitRef(fs.Arg(0))
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct {
				UsedBy []focus.Use `json:"used_by"`
			}
			if err := c.do(ctx, http.MethodGet, "/v1/templates/"+url.PathEscape(name)+"/versions/"+url.PathEscape(version)+"/used-by", nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out.UsedBy)
			}
			if len(out.UsedBy) == 0 {
				fmt.Fprintln(stdout, "nothing uses it")
			}
			for _, u := range out.UsedBy {
				fmt.Fprintf(stdout, "%s %s\n", u.Kind, u.Ref)
			}
			return nil
		})
	case "publish":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		name, version, ok := strings.Cut(fs.Arg(0), "@")
		if !ok || version == "" {
			fmt.Fprintf(stderr, "template publish: give NAME@VERSION: a version is published, not a name\n")
			return 2
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Template focus.Version }
			if err := c.do(ctx, http.MethodPost, "/v1/templates/"+url.PathEscape(name)+"/versions/"+url.PathEscape(version)+"/publish", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s is public\n", out.Template.Ref())
			return nil
		})
	case "help", "-h", "--help":
		fmt.Fprint(stdout, templateUsage)
		return 0
	}
	fmt.Fprintf(stderr, "template: unknown command %q\n\n%s", cmd, templateUsage)
	return 2
}

func runBinding(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, bindingUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("binding "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "table", "output: table or json")
	switch cmd {
	case "push":
		if err := parseFlags(fs, rest, 2); err != nil {
			return usageExit(err)
		}
		data, err := os.ReadFile(fs.Arg(1))
		if err != nil {
			return exitCode(stderr, err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct {
				Binding focus.Binding
				Created bool
			}
			if err := c.do(ctx, http.MethodPost, "/v1/bindings/"+url.PathEscape(fs.Arg(0))+"/versions", data, &out); err != nil {
				return err
			}
			note := "new version"
			if !out.Created {
				note = "unchanged"
			}
			fmt.Fprintf(stdout, "%s -> %s (%s)\n", out.Binding.Ref(), out.Binding.Template, note)
			return nil
		})
	case "list", "ls":
		if err := parseFlags(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Bindings []focus.Binding }
			if err := c.do(ctx, http.MethodGet, "/v1/bindings/", nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out.Bindings)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tLATEST\tTEMPLATE\tPARAMETERS")
			for _, b := range out.Bindings {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", b.Name, b.Version, b.Template, len(b.Parameters))
			}
			return tw.Flush()
		})
	case "show":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		name, version := splitRef(fs.Arg(0))
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Binding focus.Binding }
			if err := c.do(ctx, http.MethodGet, "/v1/bindings/"+url.PathEscape(name)+"/versions/"+url.PathEscape(version), nil, &out); err != nil {
				return err
			}
			return printJSON(stdout, out.Binding)
		})
	case "help", "-h", "--help":
		fmt.Fprint(stdout, bindingUsage)
		return 0
	}
	fmt.Fprintf(stderr, "binding: unknown command %q\n\n%s", cmd, bindingUsage)
	return 2
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// deployRequest mirrors templatesapi.DeployRequest (cmd talks HTTP, not Go).
type deployRequest struct {
	Name          string         `json:"name,omitempty"`
	Template      string         `json:"template,omitempty"`
	Binding       string         `json:"binding,omitempty"`
	Source        string         `json:"source,omitempty"`
	Parameters    map[string]any `json:"parameters,omitempty"`
	KeepOnFailure bool           `json:"keep_on_failure,omitempty"`
	DryRun        bool           `json:"dry_run,omitempty"`
}

type deploymentOut struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Status    string         `json:"status"`
	Template  string         `json:"template"`
	Binding   string         `json:"binding"`
	Attempt   int            `json:"attempt"`
	Error     string         `json:"error"`
	Outputs   map[string]any `json:"outputs"`
	UpdatedAt time.Time      `json:"updated_at"`
	Resources []struct {
		Key, Kind, Status, Peer, ID, Error string
	} `json:"resources"`
}

func runDeploy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, deployUsage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("deploy "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "table", "output: table or json")
	tmpl := fs.String("template", "", "catalog template NAME[@VERSION]")
	binding := fs.String("binding", "", "binding NAME[@VERSION]")
	file := fs.String("f", "", "template file (inline source)")
	name := fs.String("name", "", "deployment name")
	keep := fs.Bool("keep-on-failure", false, "keep what a failed attempt created instead of rolling back")
	detach := fs.Bool("detach", false, "return at once instead of following the deployment")
	follow := fs.Bool("follow", false, "events: follow until the deployment settles")
	planID := fs.String("id", "", "plan: plan an update of this deployment")
	params := labelFlags{}
	fs.Var(params, "p", "parameter k=v (repeatable)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	request := func() (deployRequest, error) {
		req := deployRequest{Name: *name, Template: *tmpl, Binding: *binding, KeepOnFailure: *keep}
		if *file != "" {
			b, err := os.ReadFile(*file)
			if err != nil {
				return req, err
			}
			req.Source = string(b)
		}
		if len(params) > 0 {
			req.Parameters = map[string]any{}
			for k, v := range params {
				req.Parameters[k] = v // the template's types convert text
			}
		}
		return req, nil
	}
	switch cmd {
	case "plan", "apply", "update":
		positional := 0
		if cmd == "update" {
			positional = 1
		}
		if err := parseFlags(fs, rest, positional); err != nil {
			return usageExit(err)
		}
		req, err := request()
		if err != nil {
			return exitCode(stderr, err)
		}
		req.DryRun = cmd == "plan"
		method, path := http.MethodPost, "/v1/deployments/"
		switch {
		case cmd == "update":
			method, path = http.MethodPut, "/v1/deployments/"+url.PathEscape(fs.Arg(0))
		case cmd == "plan" && *planID != "":
			method, path = http.MethodPut, "/v1/deployments/"+url.PathEscape(*planID)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct {
				Deployment deploymentOut
				Plan       deploy.Plan
			}
			if err := c.do(ctx, method, path, req, &out); err != nil {
				return err
			}
			if *output == "json" && cmd == "plan" {
				return printJSON(stdout, out.Plan)
			}
			printPlan(stdout, out.Plan)
			if cmd == "plan" {
				return nil
			}
			fmt.Fprintf(stdout, "deployment %s (%s)\n", out.Deployment.ID, out.Deployment.Name)
			if *detach {
				return nil
			}
			return followDeployment(ctx, c, stdout, out.Deployment.ID)
		})
	case "list", "ls":
		if err := parseFlags(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Deployments []deploymentOut }
			if err := c.do(ctx, http.MethodGet, "/v1/deployments/", nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out.Deployments)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tTEMPLATE\tATTEMPT\tUPDATED")
			for _, d := range out.Deployments {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Name, d.Status, orDash(d.Template), d.Attempt, d.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		})
	case "show":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Deployment deploymentOut }
			if err := c.do(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(fs.Arg(0)), nil, &out); err != nil {
				return err
			}
			if *output == "json" {
				return printJSON(stdout, out.Deployment)
			}
			printDeployment(stdout, out.Deployment)
			return nil
		})
	case "events":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return withAPI(ctx, stderr, func(c *client) error {
			if *follow {
				return streamEvents(ctx, c, fs.Arg(0), func(ev deploy.Event) { printEvent(stdout, ev) }, nil)
			}
			var out struct{ Events []deploy.Event }
			if err := c.do(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(fs.Arg(0))+"/events", nil, &out); err != nil {
				return err
			}
			for _, ev := range out.Events {
				printEvent(stdout, ev)
			}
			return nil
		})
	case "delete", "rm", "retry":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		method, path := http.MethodDelete, "/v1/deployments/"+url.PathEscape(fs.Arg(0))
		if cmd == "retry" {
			method, path = http.MethodPost, path+"/retry"
		}
		return withAPI(ctx, stderr, func(c *client) error {
			var out struct{ Deployment deploymentOut }
			if err := c.do(ctx, method, path, nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deployment %s: %s\n", out.Deployment.ID, out.Deployment.Status)
			if *detach {
				return nil
			}
			return followDeployment(ctx, c, stdout, out.Deployment.ID)
		})
	case "help", "-h", "--help":
		fmt.Fprint(stdout, deployUsage)
		return 0
	}
	fmt.Fprintf(stderr, "deploy: unknown command %q\n\n%s", cmd, deployUsage)
	return 2
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printPlan(w io.Writer, p deploy.Plan) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tKIND\tACTION\tPEER\tWHY")
	for _, s := range p.Steps {
		why := strings.Join(s.Reasons, "; ")
		if len(s.Changes) > 0 {
			why = "changes " + strings.Join(s.Changes, ", ") + "; " + why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Key, s.Kind, s.Action, s.PeerName, why)
	}
	_ = tw.Flush()
	counts := p.Counts()
	fmt.Fprintf(w, "plan: %d to create, %d to update, %d to replace, %d to delete, %d unchanged\n",
		counts[deploy.ActCreate], counts[deploy.ActUpdate], counts[deploy.ActReplace], counts[deploy.ActDelete], counts[deploy.ActNoop])
}

func printDeployment(w io.Writer, d deploymentOut) {
	fmt.Fprintf(w, "%s (%s)\nstatus:   %s (attempt %d)\n", d.ID, d.Name, d.Status, d.Attempt)
	if d.Template != "" {
		fmt.Fprintf(w, "template: %s\n", d.Template)
	}
	if d.Binding != "" {
		fmt.Fprintf(w, "binding:  %s\n", d.Binding)
	}
	if d.Error != "" {
		fmt.Fprintf(w, "error:    %s\n", d.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nRESOURCE\tKIND\tSTATUS\tPEER\tID")
	for _, r := range d.Resources {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Key, r.Kind, r.Status, r.Peer, r.ID)
	}
	_ = tw.Flush()
	if len(d.Outputs) > 0 {
		fmt.Fprintln(w, "\noutputs:")
		keys := make([]string, 0, len(d.Outputs))
		for k := range d.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b, _ := json.Marshal(d.Outputs[k])
			fmt.Fprintf(w, "  %s = %s\n", k, b)
		}
	}
}

func printEvent(w io.Writer, ev deploy.Event) {
	line := fmt.Sprintf("%s  %-10s %-12s", ev.Time.Format("15:04:05.000"), ev.Action, ev.Status)
	if ev.Resource != "" {
		line += " " + ev.Resource
	}
	if ev.Peer != "" {
		line += " on " + ev.Peer
	}
	if ev.Message != "" {
		line += ": " + ev.Message
	}
	fmt.Fprintln(w, line)
}

// streamEvents reads the deployment's event stream until its end event,
// calling fn for each event; tick, when set, runs between events.
func streamEvents(ctx context.Context, c *client, id string, fn func(deploy.Event), tick func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr+"/v1/deployments/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Auth-Token", c.token)
	// No overall timeout: the stream lasts as long as the deployment.
	hc := &http.Client{CheckRedirect: c.http.CheckRedirect, Transport: c.http.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the broker at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &apiError{Code: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	}
	type item struct {
		event, data string
	}
	lines := make(chan item)
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		event := ""
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				event = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				select {
				case lines <- item{event, strings.TrimPrefix(l, "data: ")}:
				case <-ctx.Done():
					return
				}
			}
		}
		errc <- fmt.Errorf("the event stream ended early: %v", sc.Err())
	}()
	ticker := time.NewTicker(120 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case it := <-lines:
			if it.event == "end" {
				var end struct{ Status, Error string }
				_ = json.Unmarshal([]byte(it.data), &end)
				if end.Status == string(deploy.StatusFailed) {
					return fmt.Errorf("deployment %s FAILED: %s", id, end.Error)
				}
				return nil
			}
			var ev deploy.Event
			if json.Unmarshal([]byte(it.data), &ev) == nil {
				fn(ev)
			}
		case err := <-errc:
			return err
		case <-ticker.C:
			if tick != nil {
				tick()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// followDeployment shows the deployment's progress until it settles: on a
// terminal one line per resource (spinner, peer, state), redrawn in place;
// otherwise one line per event. Then the deployment itself.
func followDeployment(ctx context.Context, c *client, w io.Writer, id string) error {
	var err error
	if isTerminal(w) {
		p := &progress{w: w, state: map[string]*progressLine{}}
		err = streamEvents(ctx, c, id, p.event, p.draw)
		p.draw()
	} else {
		err = streamEvents(ctx, c, id, func(ev deploy.Event) { printEvent(w, ev) }, nil)
	}
	var out struct{ Deployment deploymentOut }
	if gerr := c.do(ctx, http.MethodGet, "/v1/deployments/"+url.PathEscape(id), nil, &out); gerr == nil {
		fmt.Fprintln(w)
		printDeployment(w, out.Deployment)
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// progress is the live display: one line per resource.
type progress struct {
	w     io.Writer
	order []string
	state map[string]*progressLine
	drawn int
	frame int
}

type progressLine struct {
	action, status, peer, msg string
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *progress) event(ev deploy.Event) {
	key := ev.Resource
	if key == "" {
		key = "(deployment)"
	}
	l, ok := p.state[key]
	if !ok {
		l = &progressLine{}
		p.state[key] = l
		p.order = append(p.order, key)
	}
	l.action, l.status, l.msg = ev.Action, ev.Status, ev.Message
	if ev.Peer != "" {
		l.peer = ev.Peer
	}
	p.draw()
}

func (p *progress) draw() {
	p.frame++
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn) // back to the first line
	}
	for _, key := range p.order {
		l := p.state[key]
		mark := "✓"
		switch l.status {
		case "IN_PROGRESS":
			mark = spinner[p.frame%len(spinner)]
		case "FAILED":
			mark = "✗"
		}
		msg := l.msg
		if len(msg) > 60 {
			msg = msg[:57] + "..."
		}
		fmt.Fprintf(p.w, "\x1b[2K%s %-28s %-8s %-8s %-11s %s\n", mark, key, orDash(l.peer), l.action, l.status, msg)
	}
	p.drawn = len(p.order)
}
