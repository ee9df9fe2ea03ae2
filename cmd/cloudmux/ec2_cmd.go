package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/identity"
)

const ec2Usage = `Usage:
  cloudmux ec2 credentials create [-project NAME|ID] [-o table|json|env]
  cloudmux ec2 credentials list [-o table|json]
  cloudmux ec2 credentials delete ACCESS
  cloudmux ec2 upload -name NAME [-disk-format raw] [-container-format bare] FILE
  cloudmux ec2 endpoint [-o text|env]

EC2 credentials are access/secret key pairs for the broker's EC2 API
(/ec2/), acting as you on one project (default: your token's project).
upload sends an image file to /ec2/upload signed with the keys in
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (econe-upload's step) and
prints the image location to register:
  aws ec2 register-image --image-location LOCATION --name NAME

endpoint prints the EC2 URL from the Keystone catalog (service type ec2);
-o env as AWS_ENDPOINT_URL_EC2, which aws CLI 2.13 and later read.

Use them with the aws CLI:
  eval "$(cloudmux ec2 credentials create -o env)"
  aws --endpoint-url "$(cloudmux ec2 endpoint)" --region RegionOne ec2 describe-instances
`

// ec2Credential is Keystone's OS-EC2 credential.
type ec2Credential struct {
	Access   string `json:"access"`
	Secret   string `json:"secret"`
	UserID   string `json:"user_id"`
	TenantID string `json:"tenant_id"`
}

func runEC2(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "upload" {
		return runEC2Upload(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "endpoint" {
		return runEC2Endpoint(args[1:], stdout, stderr)
	}
	if len(args) < 2 || args[0] != "credentials" && args[0] != "creds" {
		fmt.Fprint(stderr, ec2Usage)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, rest := args[1], args[2:]
	fs := flag.NewFlagSet("ec2 credentials "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "create":
		project := fs.String("project", "", "project name or ID (default: the token's project)")
		output := fs.String("o", "table", "output: table, json or env (export lines for the aws CLI)")
		if err := parseArgs(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		if *output != "table" && *output != "json" && *output != "env" {
			fmt.Fprintf(stderr, "ec2 credentials create: -o must be table, json or env, not %q\n", *output)
			return 2
		}
		return withClient(ctx, stderr, func(c *client) error {
			me, err := whoami(ctx, c)
			if err != nil {
				return err
			}
			projectID := me.ProjectID
			if *project != "" {
				if projectID, err = findMyProject(ctx, c, *project); err != nil {
					return err
				}
			}
			var out struct{ Credential ec2Credential }
			if err := c.do(ctx, http.MethodPost, "/v3/users/"+url.PathEscape(me.UserID)+"/credentials/OS-EC2",
				map[string]string{"tenant_id": projectID}, &out); err != nil {
				return err
			}
			return printCredentials(stdout, *output, []ec2Credential{out.Credential}, true)
		})
	case "list", "ls":
		output := fs.String("o", "table", "output: table or json")
		if err := parseFlags(fs, rest, 0); err != nil {
			return usageExit(err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			me, err := whoami(ctx, c)
			if err != nil {
				return err
			}
			var out struct{ Credentials []ec2Credential }
			if err := c.do(ctx, http.MethodGet, "/v3/users/"+url.PathEscape(me.UserID)+"/credentials/OS-EC2", nil, &out); err != nil {
				return err
			}
			return printCredentials(stdout, *output, out.Credentials, false)
		})
	case "delete", "rm":
		if err := parseArgs(fs, rest, 1); err != nil {
			return usageExit(err)
		}
		return withClient(ctx, stderr, func(c *client) error {
			me, err := whoami(ctx, c)
			if err != nil {
				return err
			}
			return c.do(ctx, http.MethodDelete, "/v3/users/"+url.PathEscape(me.UserID)+"/credentials/OS-EC2/"+url.PathEscape(fs.Arg(0)), nil, nil)
		})
	}
	fmt.Fprintf(stderr, "cloudmux ec2 credentials: unknown command %q\n\n%s", cmd, ec2Usage)
	return 2
}

// principal is who the client's token stands for.
type principal struct {
	UserID, ProjectID string
}

// whoami validates the client's own token (Keystone's GET /v3/auth/tokens
// with the token as its own subject) for its user and project.
func whoami(ctx context.Context, c *client) (principal, error) {
	if c.token == "" {
		return principal{}, fmt.Errorf("no token: set CLOUDMUX_TOKEN (cloudmux login) or CLOUDMUX_USERNAME and CLOUDMUX_PASSWORD")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.addr+"/v3/auth/tokens?nocatalog", nil)
	if err != nil {
		return principal{}, err
	}
	req.Header.Set("X-Auth-Token", c.token)
	req.Header.Set("X-Subject-Token", c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return principal{}, fmt.Errorf("cannot reach the broker at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var eb struct{ Error apiError }
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != 0 {
			return principal{}, &eb.Error
		}
		return principal{}, fmt.Errorf("validating the token: %s", resp.Status)
	}
	var body struct {
		Token struct {
			User    struct{ ID string }
			Project struct{ ID string }
		}
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return principal{}, err
	}
	return principal{UserID: body.Token.User.ID, ProjectID: body.Token.Project.ID}, nil
}

// findMyProject resolves a project name or ID among the projects the user
// has a role on.
func findMyProject(ctx context.Context, c *client, nameOrID string) (string, error) {
	var out struct {
		Projects []struct{ ID, Name string }
	}
	if err := c.do(ctx, http.MethodGet, "/v3/auth/projects", nil, &out); err != nil {
		return "", err
	}
	for _, p := range out.Projects {
		if p.ID == nameOrID || strings.EqualFold(p.Name, nameOrID) {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("you have no role on a project named %q", nameOrID)
}

// printCredentials writes credentials; one, when single (a create), as an
// object in JSON rather than a list.
func printCredentials(w io.Writer, output string, creds []ec2Credential, single bool) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if single {
			return enc.Encode(creds[0])
		}
		return enc.Encode(creds)
	case "env":
		// Quoted for the shell: eval "$(cloudmux ec2 credentials create -o env)".
		fmt.Fprintf(w, "export AWS_ACCESS_KEY_ID='%s'\nexport AWS_SECRET_ACCESS_KEY='%s'\n", creds[0].Access, creds[0].Secret)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS\tSECRET\tPROJECT")
	for _, c := range creds {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Access, c.Secret, c.TenantID)
	}
	return tw.Flush()
}

// runEC2Upload streams an image file to the broker's /ec2/upload, signed
// (SigV4, with the file's SHA-256 as the payload hash) with the EC2 keys of
// the environment, and prints the image location and AMI ID.
func runEC2Upload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ec2 upload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "image name (default: the file's base name)")
	diskFormat := fs.String("disk-format", "raw", "disk format: raw, qcow2, ...")
	containerFormat := fs.String("container-format", "bare", "container format")
	if err := parseArgs(fs, args, 1); err != nil {
		return usageExit(err)
	}
	keys := ec2.Keys{AccessKey: getenv("AWS_ACCESS_KEY_ID"), SecretKey: getenv("AWS_SECRET_ACCESS_KEY")}
	if keys.AccessKey == "" || keys.SecretKey == "" {
		fmt.Fprintln(stderr, "ec2 upload: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (cloudmux ec2 credentials create -o env)")
		return 2
	}
	path := fs.Arg(0)
	if *name == "" {
		*name = filepath.Base(path)
	}
	addr := strings.TrimRight(getenv("CLOUDMUX_ADDR"), "/")
	if addr == "" {
		addr = "http://127.0.0.1:8080"
	}
	transport, err := brokerTransport(getenv)
	if err != nil {
		return exitCode(stderr, err)
	}
	return exitCode(stderr, func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		size, err := io.Copy(h, f) // hashed first, so the signature covers the bytes
		if err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		q := url.Values{"name": {*name}, "disk_format": {*diskFormat}, "container_format": {*containerFormat}}
		req, err := http.NewRequest(http.MethodPut, addr+"/ec2/upload?"+q.Encode(), f)
		if err != nil {
			return err
		}
		req.ContentLength = size
		req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(h.Sum(nil)))
		if err := ec2.Sign(req, nil, keys, identity.Region, "ec2", time.Now()); err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: transport}).Do(req)
		if err != nil {
			return fmt.Errorf("cannot reach the broker at %s: %w", addr, err)
		}
		defer resp.Body.Close()
		var out struct {
			Location string `xml:"imageLocation"`
			ImageID  string `xml:"imageId"`
			Code     string `xml:"Errors>Error>Code"`
			Message  string `xml:"Errors>Error>Message"`
		}
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err := xml.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("upload: %s: %s", resp.Status, strings.TrimSpace(string(raw)))
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("upload: %s: %s", out.Code, out.Message)
		}
		fmt.Fprintf(stdout, "IMAGE_LOCATION=%s\nIMAGE_ID=%s\n", out.Location, out.ImageID)
		return nil
	}())
}
