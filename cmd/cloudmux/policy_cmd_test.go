package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runCLI(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

const cliPolicy = `package cloudmux.placement

deny[p.id] contains "gpu peers are reserved" if {
	some p in input.peers
	p.labels.gpu
	not input.request.hints.required_labels.gpu
}

score[p.id] := 10 if some p in input.peers
`

const cliPolicyTest = `package cloudmux.placement_test

import data.cloudmux.fixtures
import data.cloudmux.placement

test_gpu_reserved if {
	placement.deny["p-dear"] with input as {"request": fixtures.request, "peers": [fixtures.peers.dear]}
}

test_cheap_allowed if {
	not placement.deny["p-cheap"] with input as {"request": fixtures.request, "peers": [fixtures.peers.cheap]}
}
`

func TestPolicyTestCommand(t *testing.T) {
	stock := policy.Stock()
	stockDir := writeFiles(t, map[string]string{"placement.rego": stock.Modules["placement.rego"], "placement_test.rego": stock.Tests["placement_test.rego"]})
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"the stock policy passes its tests", []string{"policy", "test", stockDir}, 0, []string{"PASS: 11/11"}, nil},
		{"an admin's policy against the fixture peers", []string{"policy", "test", writeFiles(t, map[string]string{"p.rego": cliPolicy, "p_test.rego": cliPolicyTest}), "-v"}, 0,
			[]string{"data.cloudmux.placement_test.test_gpu_reserved: PASS", "PASS: 2/2"}, nil},
		{"-run filters", []string{"policy", "test", stockDir, "-run", "bursts"}, 0, []string{"PASS: 1/1"}, nil},
		{"a failing test", []string{"policy", "test", writeFiles(t, map[string]string{"p.rego": cliPolicy, "p_test.rego": strings.ReplaceAll(cliPolicyTest, `"p-dear"`, `"p-cheap"`)})}, 1,
			[]string{"p_test.rego:6: data.cloudmux.placement_test.test_gpu_reserved: FAIL", "FAIL: 1/2"}, nil},
		{"a compile error with its position", []string{"policy", "test", writeFiles(t, map[string]string{"p.rego": "package cloudmux.placement\n\ndeny[x] contains 1 if {\n\ty == 2\n}\n"})}, 1,
			nil, []string{"p.rego:3:6: var x is unsafe"}},
		{"no rego files", []string{"policy", "test", t.TempDir()}, 1, nil, []string{"holds no .rego files"}},
		{"no directory", []string{"policy", "test"}, 2, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// TestPolicyCommandsAgainstBroker drives push, list, show, activate,
// explain, decisions and rollback against a broker serving the policy API.
func TestPolicyCommandsAgainstBroker(t *testing.T) {
	var engine *policy.Engine
	env := brokertest.New(t, []brokertest.Peer{{Name: "alpha"}, {Name: "beta"}}, func(e *brokertest.Env, r chi.Router) {
		vs, ds := policy.NewVersions(e.Store), policy.NewDecisions(e.Store, 0, 0)
		var err error
		if engine, err = policy.NewEngine(e.Ctx, policy.EngineConfig{Versions: vs, Decisions: ds, Log: e.Log}); err != nil {
			t.Fatal(err)
		}
		api := &policyapi.API{Versions: vs, Decisions: ds, Engine: engine, Auth: e.Keystone.Authenticate, Log: e.Log,
			Candidates: policyapi.PoolCandidates(e.Pool)}
		r.Route("/v1", api.Routes)
	})
	go func() { _ = engine.Run(env.Ctx) }()
	t.Setenv("CLOUDMUX_ADDR", env.Server.URL)
	t.Setenv("CLOUDMUX_TOKEN", env.Provider(t, "admin", brokertest.AdminPassword, "admin").TokenID)
	dir := writeFiles(t, map[string]string{"p.rego": cliPolicy, "p_test.rego": cliPolicyTest, "config/data.json": `{"note": "data at data.config"}`})

	out, errOut, code := runCLI("policy", "push", dir, "-comment", "reserve gpus")
	if code != 0 || !strings.Contains(out, "uploaded (1 modules, 1 tests)") {
		t.Fatalf("push: %d %s %s", code, out, errOut)
	}
	version := strings.Fields(out)[1]
	if out, _, _ := runCLI("policy", "push", dir); !strings.Contains(out, version+" already stored") {
		t.Fatalf("second push: %s", out)
	}
	bad := writeFiles(t, map[string]string{"p.rego": "package cloudmux.placement\n\nscore := {\n"})
	if _, errOut, code := runCLI("policy", "push", bad); code != 1 || !strings.Contains(errOut, "400 Bad Request: the policy does not compile\n  p.rego:4:0:") {
		t.Fatalf("bad push: %d %q", code, errOut)
	}
	if out, _, code := runCLI("policy", "list"); code != 0 || !strings.Contains(out, version) || !strings.Contains(out, "reserve gpus") || !strings.Contains(out, "stock") {
		t.Fatalf("list: %d %s", code, out)
	}
	written := t.TempDir()
	if _, errOut, code := runCLI("policy", "show", "stock", "-write", written); code != 0 {
		t.Fatalf("show -write: %d %s", code, errOut)
	}
	if _, _, code := runCLI("policy", "test", written); code != 0 {
		t.Fatal("the stock policy written by show -write does not pass its tests")
	}
	if out, _, code := runCLI("policy", "activate", version); code != 0 || !strings.Contains(out, "active: "+version) {
		t.Fatalf("activate: %d %s", code, out)
	}
	for changed := engine.Changed(); engine.Active() != version; changed = engine.Changed() {
		select {
		case <-changed:
		case <-env.Ctx.Done():
			t.Fatal("the engine never switched")
		}
	}
	out, errOut, code = runCLI("policy", "explain", "-vcpus", "1", "-ram", "512")
	if code != 0 || !strings.Contains(out, "policy "+version+": would try alpha, beta") {
		t.Fatalf("explain: %d %s %s", code, out, errOut)
	}
	out, _, code = runCLI("policy", "explain", "-version", "stock", "-require", "gpu=a100", "-o", "json")
	if code != 0 || !strings.Contains(out, `"lacks required label gpu=a100"`) {
		t.Fatalf("explain with stock: %d %s", code, out)
	}
	if out, _, code := runCLI("policy", "rollback"); code != 0 || !strings.Contains(out, "active: stock") {
		t.Fatalf("rollback: %d %s", code, out)
	}
	if _, errOut, code := runCLI("policy", "decisions", "-resource", "nothing"); code != 1 || !strings.Contains(errOut, "no decisions match") {
		t.Fatalf("decisions: %d %s", code, errOut)
	}
}
