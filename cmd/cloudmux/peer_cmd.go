package main

import (
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

	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

const peerUsage = `Usage:
  cloudmux peer list [-kind K] [-status S] [-label k=v ...] [-o table|json]
  cloudmux peer show PEER [-o table|json]
  cloudmux peer add -name N -kind openstack -auth-url URL [-region R] [-interface public]
                    [-username U -password-env VAR | -app-cred-id ID -app-cred-secret-env VAR]
                    [-user-domain Default] [-project P] [-project-domain Default] [-label k=v ...]
  cloudmux peer rm PEER
  cloudmux peer import [-cloud NAME ...] [-label k=v ...] clouds.yaml
  cloudmux peer maintenance PEER on|off [-reason TEXT]

Secrets are read from environment variables named by -password-env and
-app-cred-secret-env, never from the command line (it shows in ps).
`

// labelFlags collects repeated -label k=v.
type labelFlags map[string]string

func (l labelFlags) String() string { return fmt.Sprint(map[string]string(l)) }
func (l labelFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", v)
	}
	l[k] = val
	return nil
}

// listFlags collects a repeated string flag.
type listFlags []string

func (l *listFlags) String() string     { return strings.Join(*l, ",") }
func (l *listFlags) Set(v string) error { *l = append(*l, v); return nil }

func runPeer(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, peerUsage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("peer "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "table", "output: table or json")
	labels := labelFlags{}
	fs.Var(labels, "label", "label k=v (repeatable)")

	switch cmd {
	case "list", "ls":
		kind := fs.String("kind", "", "only this kind")
		status := fs.String("status", "", "only this status")
		if err := parseFlags(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		q := url.Values{}
		if *kind != "" {
			q.Set("kind", *kind)
		}
		if *status != "" {
			q.Set("status", *status)
		}
		for k, v := range labels {
			q.Add("label", k+"="+v)
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct{ Peers []peerOut }
			if err := c.do(ctx, http.MethodGet, "/v1/peers/?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return printPeers(stdout, *output, out.Peers)
		})
	case "show":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct{ Peer peerOut }
			if err := c.do(ctx, http.MethodGet, "/v1/peers/"+url.PathEscape(fs.Arg(0)), nil, &out); err != nil {
				return err
			}
			return printPeer(stdout, *output, out.Peer)
		})
	case "add":
		return peerAdd(ctx, fs, rest, labels, output, stdout, stderr)
	case "rm", "delete":
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			if err := c.do(ctx, http.MethodDelete, "/v1/peers/"+url.PathEscape(fs.Arg(0)), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "peer %s removed\n", fs.Arg(0))
			return nil
		})
	case "import":
		var only listFlags
		fs.Var(&only, "cloud", "import only this cloud (repeatable)")
		if err := parseFlags(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return exitCode(stderr, err)
		}
		// cacert paths name files on this machine: send their contents.
		if data, err = openstack.InlineCACerts(data, os.ReadFile); err != nil {
			return exitCode(stderr, err)
		}
		q := url.Values{}
		for _, c := range only {
			q.Add("cloud", c)
		}
		for k, v := range labels {
			q.Add("label", k+"="+v)
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct{ Peers []peerOut }
			if err := c.do(ctx, http.MethodPost, "/v1/peers/import?"+q.Encode(), data, &out); err != nil {
				return err
			}
			return printPeers(stdout, *output, out.Peers)
		})
	case "maintenance":
		reason := fs.String("reason", "", "why (shown in peer show)")
		if err := parseFlags(fs, rest, 2); err != nil {
			return usageExit(err)
		}
		status := map[string]registry.Status{"on": registry.StatusMaintenance, "off": registry.StatusUp}[fs.Arg(1)]
		if status == "" {
			fmt.Fprintln(stderr, "peer maintenance: the second argument is on or off")
			return 2
		}
		return withClient(ctx, stderr, func(c *client) error {
			var out struct{ Peer peerOut }
			body := map[string]any{"status": status, "status_reason": *reason}
			if err := c.do(ctx, http.MethodPatch, "/v1/peers/"+url.PathEscape(fs.Arg(0)), body, &out); err != nil {
				return err
			}
			return printPeer(stdout, *output, out.Peer)
		})
	case "-h", "--help", "help":
		fmt.Fprint(stdout, peerUsage)
		return 0
	}
	fmt.Fprintf(stderr, "peer: unknown subcommand %q\n\n%s", cmd, peerUsage)
	return 2
}

func peerAdd(ctx context.Context, fs *flag.FlagSet, args []string, labels labelFlags, output *string, stdout, stderr io.Writer) int {
	name := fs.String("name", "", "peer name (required)")
	kind := fs.String("kind", "openstack", "peer kind: openstack or local")
	authURL := fs.String("auth-url", "", "Keystone URL, e.g. https://keystone.example.com:5000/v3")
	region := fs.String("region", "", "region name")
	iface := fs.String("interface", "", "endpoint interface: public, internal or admin")
	caFile := fs.String("cacert", "", "PEM CA bundle file to trust")
	insecure := fs.Bool("insecure", false, "skip TLS verification (testing only)")
	username := fs.String("username", "", "user name")
	userDomain := fs.String("user-domain", "Default", "user domain name")
	project := fs.String("project", "", "project name")
	projectDomain := fs.String("project-domain", "Default", "project domain name")
	passwordEnv := fs.String("password-env", "", "name of the environment variable holding the password")
	appCredID := fs.String("app-cred-id", "", "application credential ID")
	appCredSecretEnv := fs.String("app-cred-secret-env", "", "name of the environment variable holding the application credential secret")
	if err := parseFlags(fs, args, 0); err != nil {
		return usageExit(err)
	}
	body := map[string]any{
		"name": *name, "kind": *kind, "labels": map[string]string(labels),
		"endpoint": registry.Endpoint{AuthURL: *authURL, Region: *region, Interface: *iface, Insecure: *insecure},
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return exitCode(stderr, err)
		}
		ep := body["endpoint"].(registry.Endpoint)
		ep.CACert = string(pem)
		body["endpoint"] = ep
	}
	var creds *registry.Credentials
	switch {
	case *appCredID != "":
		creds = &registry.Credentials{AuthType: registry.AuthApplicationCredential, ApplicationCredentialID: *appCredID, ApplicationCredentialSecret: os.Getenv(*appCredSecretEnv)}
	case *username != "":
		creds = &registry.Credentials{Username: *username, UserDomainName: *userDomain, ProjectName: *project, ProjectDomainName: *projectDomain}
		if *passwordEnv != "" {
			creds.Password = os.Getenv(*passwordEnv)
		}
	}
	if creds != nil {
		// Credentials redact themselves in JSON; send the secret form on purpose.
		raw, err := registry.MarshalCredentialsSecret(*creds)
		if err != nil {
			return exitCode(stderr, err)
		}
		body["credentials"] = json.RawMessage(raw)
	}
	return withClient(ctx, stderr, func(c *client) error {
		var out struct{ Peer peerOut }
		if err := c.do(ctx, http.MethodPost, "/v1/peers/", body, &out); err != nil {
			return err
		}
		return printPeer(stdout, *output, out.Peer)
	})
}

// parseFlags parses and checks the positional argument count and the -o
// flag, when the set has one. Flags may follow positional arguments
// (`peer show NAME -o json`).
func parseFlags(fs *flag.FlagSet, args []string, positional int) error {
	if err := parseArgs(fs, args, positional); err != nil {
		return err
	}
	if o := fs.Lookup("o"); o != nil && o.Value.String() != "table" && o.Value.String() != "json" {
		fmt.Fprintf(fs.Output(), "%s: -o must be table or json, not %q\n", fs.Name(), o.Value.String())
		return errUsage
	}
	return nil
}

func parseArgs(fs *flag.FlagSet, args []string, positional int) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := fs.Parse(pos); err != nil { // reset Args() to the positionals
		return err
	}
	if fs.NArg() != positional {
		fmt.Fprintf(fs.Output(), "%s: expected %d argument(s), got %d\n", fs.Name(), positional, fs.NArg())
		return errUsage
	}
	return nil
}

// errUsage is a command line that does not fit the command.
var errUsage = errors.New("usage error")

// usageExit is 0 when the user asked for help (-h), 2 for a usage error.
func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func withClient(ctx context.Context, stderr io.Writer, fn func(*client) error) int {
	c, err := newClient(ctx, getenv)
	if err != nil {
		return exitCode(stderr, err)
	}
	return exitCode(stderr, fn(c))
}

// peerOut is a peer as the API returns it.
type peerOut struct {
	registry.Peer
	HasCredentials  bool   `json:"has_credentials"`
	Connected       bool   `json:"connected"`
	Driver          string `json:"driver"`
	ConnectionError string `json:"connection_error"`
}

func printPeers(w io.Writer, format string, ps []peerOut) error {
	if format == "json" {
		return printJSON(w, ps)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATUS\tREGION\tVCPUS (USED/TOTAL)\tLABELS\tID")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", p.Name, p.Kind, p.Status, dash(p.Endpoint.Region),
			p.Capacity.VCPUs.Used, p.Capacity.VCPUs.Total, labelString(p.Labels), p.ID)
	}
	return tw.Flush()
}

func printPeer(w io.Writer, format string, p peerOut) error {
	if format == "json" {
		return printJSON(w, p)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	c := p.Capacity
	rows := [][2]string{
		{"id", p.ID}, {"name", p.Name}, {"kind", string(p.Kind)},
		{"status", string(p.Status) + reasonSuffix(p.StatusReason)},
		{"auth_url", dash(p.Endpoint.AuthURL)}, {"region", dash(p.Endpoint.Region)}, {"interface", dash(p.Endpoint.Interface)},
		{"labels", labelString(p.Labels)},
		{"vcpus", fmt.Sprintf("%d/%d", c.VCPUs.Used, c.VCPUs.Total)},
		{"ram_mib", fmt.Sprintf("%d/%d", c.RAMMiB.Used, c.RAMMiB.Total)},
		{"disk_gib", fmt.Sprintf("%d/%d", c.DiskGiB.Used, c.DiskGiB.Total)},
		{"instances", fmt.Sprintf("%d/%d", c.Instances.Used, c.Instances.Total)},
		{"credentials", map[bool]string{true: "stored (never shown)", false: "none"}[p.HasCredentials]},
		{"connected", fmt.Sprintf("%v%s", p.Connected, driverSuffix(p.Driver))},
		{"connection_error", dash(p.ConnectionError)},
		{"last_heartbeat", timeOrDash(p.LastHeartbeat)},
		{"revision", fmt.Sprint(p.Revision)},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func driverSuffix(d string) string {
	if d == "" {
		return ""
	}
	return " (driver=" + d + ")"
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}
