package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// runEC2Endpoint prints the EC2 API's URL as the Keystone catalog of the
// caller's token gives it (service type ec2, the public interface), the
// way tools that find EC2 through the catalog (as with OpenStack's
// ec2-api) find it: aws --endpoint-url "$(cloudmux ec2 endpoint)". -o env
// prints AWS_ENDPOINT_URL_EC2, which the aws CLI (2.13 and later; botocore
// 1.31) reads instead of --endpoint-url.
func runEC2Endpoint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ec2 endpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output: text (the URL) or env (an export line for the aws CLI)")
	if err := parseArgs(fs, args, 0); err != nil {
		return usageExit(err)
	}
	if *output != "text" && *output != "env" {
		fmt.Fprintf(stderr, "ec2 endpoint: -o must be text or env, not %q\n", *output)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return withClient(ctx, stderr, func(c *client) error {
		var out struct {
			Catalog []struct {
				Type      string
				Endpoints []struct{ Interface, URL string }
			}
		}
		if err := c.do(ctx, http.MethodGet, "/v3/auth/catalog", nil, &out); err != nil {
			return err
		}
		for _, svc := range out.Catalog {
			if svc.Type != "ec2" {
				continue
			}
			for _, ep := range svc.Endpoints {
				if ep.Interface != "public" {
					continue
				}
				if *output == "env" {
					// Quoted for the shell, as credentials create -o env.
					fmt.Fprintf(stdout, "export AWS_ENDPOINT_URL_EC2='%s'\n", strings.ReplaceAll(ep.URL, "'", `'\''`))
				} else {
					fmt.Fprintln(stdout, ep.URL)
				}
				return nil
			}
		}
		return fmt.Errorf("the catalog has no public ec2 endpoint")
	})
}
