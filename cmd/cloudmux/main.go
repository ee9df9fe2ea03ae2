package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `cloudmux: one endpoint across private and public clouds

Usage:
  cloudmux serve -dev                 run an all-embedded broker (memory store, local cloud)
  cloudmux serve -config FILE         run a broker against Consul
  cloudmux peer list|show|add|rm|import|maintenance ...
  cloudmux policy push|list|show|activate|rollback|test|explain|decisions ...
  cloudmux login -u admin             get a token (prints it; export CLOUDMUX_TOKEN)
  cloudmux ec2 credentials|upload ...                 EC2 keys and image upload for the aws CLI
  cloudmux template push|list|show|diff|used-by ...   Eve/HOT templates in the Focus catalog
  cloudmux binding push|list|show ...                 binding documents (parameters, placement)
  cloudmux deploy plan|apply|update|list|show|events|delete|retry ...
  cloudmux state backup|restore|verify ...          the broker's Consul state to and from a file
  cloudmux version

The client commands read CLOUDMUX_ADDR (default http://127.0.0.1:8080) and
CLOUDMUX_TOKEN, or log in with CLOUDMUX_USERNAME/CLOUDMUX_PASSWORD.
Run 'cloudmux COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit status: 0 ok, 1 the
// command failed, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "peer", "peers":
		return runPeer(args[1:], stdout, stderr)
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "login":
		return runLogin(args[1:], stdout, stderr)
	case "template", "templates":
		return runTemplate(args[1:], stdout, stderr)
	case "binding", "bindings":
		return runBinding(args[1:], stdout, stderr)
	case "deploy", "deployment", "deployments":
		return runDeploy(args[1:], stdout, stderr)
	case "ec2":
		return runEC2(args[1:], stdout, stderr)
	case "state":
		return runState(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "version: unexpected arguments %v\n", args[1:])
			return 2
		}
		fmt.Fprintf(stdout, "cloudmux %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "cloudmux: unknown command %q\n\n%s", args[0], usage)
	return 2
}
