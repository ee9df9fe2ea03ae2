package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// runLogin exchanges a user name and password (from -password-env or
// CLOUDMUX_PASSWORD) for a token and prints an export line.
func runLogin(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("u", "admin", "user name")
	passwordEnv := fs.String("password-env", "CLOUDMUX_PASSWORD", "environment variable holding the password")
	ttl := fs.String("ttl", "", "token lifetime, e.g. 8h (default 24h)")
	if err := parseFlags(fs, args, 0); err != nil {
		return usageExit(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := func(name string) string {
		if name == "CLOUDMUX_TOKEN" || name == "CLOUDMUX_USERNAME" {
			return "" // log in afresh, whatever the environment holds
		}
		return os.Getenv(name)
	}
	c, err := newClient(ctx, env)
	if err != nil {
		return exitCode(stderr, err)
	}
	var out struct{ Token string }
	body := map[string]string{"username": *user, "password": os.Getenv(*passwordEnv), "ttl": *ttl}
	if err := c.do(ctx, http.MethodPost, "/v1/auth/tokens", body, &out); err != nil {
		return exitCode(stderr, err)
	}
	fmt.Fprintf(stdout, "export CLOUDMUX_TOKEN=%s\n", out.Token)
	return 0
}
