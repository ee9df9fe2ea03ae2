package compute_test

import (
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestOpenStackCLILifecycle drives the real openstack CLI through the
// server lifecycle actions and the instance actions they leave.
func TestOpenStackCLILifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t, brokertest.Peer{Name: "local-a"})
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	gc := se.admin(t)
	dpw := se.Member(t, "dave", "admin", identity.RoleMember)
	var serverID, pauseReq string
	admin := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", args...)
	}
	dave := func(args ...string) (string, int) { return se.osc(t, "dave", dpw, "admin", args...) }
	waitFor := func(status string) func() {
		return func() { waitStatus(t, gc, serverID, status) }
	}
	steps := []cliStep{
		{"server create", func() (string, int) {
			out, code := admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--wait", "life-vm", "-f", "value", "-c", "id")
			serverID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, nil},
		{"server pause", func() (string, int) { return admin("server", "pause", "life-vm") }, 0, nil, waitFor("PAUSED")},
		{"paused", func() (string, int) {
			return admin("server", "show", "life-vm", "-f", "value", "-c", "status", "-c", "OS-EXT-STS:power_state", "-c", "OS-EXT-STS:vm_state")
		}, 0, []string{"3\npaused\nPAUSED"}, nil},
		{"pause again", func() (string, int) { return admin("server", "pause", "life-vm") }, 1, []string{"409", "while it is in its current state"}, nil},
		{"server unpause", func() (string, int) { return admin("server", "unpause", "life-vm") }, 0, nil, waitFor("ACTIVE")},
		{"server suspend", func() (string, int) { return admin("server", "suspend", "life-vm") }, 0, nil, waitFor("SUSPENDED")},
		{"suspended", func() (string, int) {
			return admin("server", "show", "life-vm", "-f", "value", "-c", "status", "-c", "OS-EXT-STS:vm_state")
		}, 0, []string{"SUSPENDED", "suspended"}, nil},
		{"server resume", func() (string, int) { return admin("server", "resume", "life-vm") }, 0, nil, waitFor("ACTIVE")},
		{"server resize", func() (string, int) { return admin("server", "resize", "--flavor", "m1.small", "life-vm") }, 0, nil, waitFor("VERIFY_RESIZE")},
		{"verifying", func() (string, int) {
			return admin("server", "show", "life-vm", "-f", "value", "-c", "status", "-c", "flavor", "-c", "OS-EXT-STS:vm_state")
		}, 0, []string{"m1.small", "resized", "VERIFY_RESIZE"}, nil},
		{"server resize revert", func() (string, int) { return admin("server", "resize", "revert", "life-vm") }, 0, nil, waitFor("ACTIVE")},
		{"reverted", func() (string, int) { return admin("server", "show", "life-vm", "-f", "value", "-c", "flavor") }, 0, []string{"m1.tiny"}, nil},
		{"server resize again", func() (string, int) { return admin("server", "resize", "--flavor", "m1.small", "life-vm") }, 0, nil, waitFor("VERIFY_RESIZE")},
		{"server resize confirm", func() (string, int) { return admin("server", "resize", "confirm", "life-vm") }, 0, nil, waitFor("ACTIVE")},
		{"confirmed", func() (string, int) { return admin("server", "show", "life-vm", "-f", "value", "-c", "flavor") }, 0, []string{"m1.small"}, nil},
		{"server lock", func() (string, int) { return admin("server", "lock", "life-vm") }, 0, nil, nil},
		{"a member is refused", func() (string, int) { return dave("server", "stop", "life-vm") }, 1, []string{"409", "is locked"}, nil},
		{"a member may not lift an admin's lock", func() (string, int) { return dave("server", "unlock", "life-vm") }, 1, []string{"403"}, nil},
		{"server unlock", func() (string, int) { return admin("server", "unlock", "life-vm") }, 0, nil, nil},
		{"a member acts again", func() (string, int) { return dave("server", "stop", "life-vm") }, 0, nil, waitFor("SHUTOFF")},
		{"server event list", func() (string, int) {
			out, code := admin("server", "event", "list", "life-vm", "-f", "value", "-c", "Request ID", "-c", "Action")
			for _, l := range strings.Split(out, "\n") {
				if req, ok := strings.CutSuffix(strings.TrimSpace(l), " pause"); ok {
					pauseReq = req
				}
			}
			return out, code
		}, 0, []string{"create", "pause", "unpause", "suspend", "resume", "resize", "revertResize", "confirmResize", "lock", "unlock", "stop"}, nil},
		{"server event show", func() (string, int) { return admin("server", "event", "show", "life-vm", pauseReq, "-f", "shell") }, 0,
			[]string{`action="pause"`, "compute_pause_instance", "Success"}, nil},
		{"a member may not reset the state", func() (string, int) { return dave("server", "set", "--state", "error", "life-vm") }, 1, []string{"403"}, nil},
		{"server set --state error", func() (string, int) { return admin("server", "set", "--state", "error", "life-vm") }, 0, nil, waitFor("ERROR")},
		{"server set --state active", func() (string, int) { return admin("server", "set", "--state", "active", "life-vm") }, 0, nil, waitFor("ACTIVE")},
		{"server delete", func() (string, int) { return admin("server", "delete", "--wait", "life-vm") }, 0, nil, nil},
	}
	runCLI(t, steps)
}

// cliStep is one call of a scripted CLI test: the exit code and what the
// output must hold; then, when set, runs after it (a wait for a status).
type cliStep struct {
	name     string
	run      func() (string, int)
	wantCode int
	want     []string
	then     func()
}

// printsNothing wraps a step's run so the test fails if it prints
// anything (an empty list is the point).
func printsNothing(t *testing.T, run func() (string, int)) func() (string, int) {
	return func() (string, int) {
		out, code := run()
		if code == 0 && strings.TrimSpace(out) != "" {
			t.Fatalf("want an empty list, got:\n%s", out)
		}
		return out, code
	}
}

// runCLI runs steps in order and stops at the first that fails.
func runCLI(t *testing.T, steps []cliStep) {
	t.Helper()
	for _, st := range steps {
		out, code := st.run()
		if code != st.wantCode {
			t.Fatalf("%s: exit %d, want %d:\n%s", st.name, code, st.wantCode, out)
		}
		for _, w := range st.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: output lacks %q:\n%s", st.name, w, out)
			}
		}
		if st.then != nil {
			st.then()
		}
	}
}
