package consultest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
)

// Version is the Consul release the project targets: 1.14.11 is the last
// MPL-licensed line, and the one scripts/install-consul.sh builds.
const Version = "1.14.11"

// Timeouts of the agent's lifecycle. They are generous because CI machines
// are slow and several agents may start at once; they bound failures, they
// do not gate correctness.
const (
	readyTimeout   = 60 * time.Second
	stopGrace      = 10 * time.Second
	installTimeout = 9 * time.Minute // the first build takes ~4 minutes
	startAttempts  = 3               // free ports can be taken between pick and bind
)

// Agent is a running `consul agent -dev`.
type Agent struct {
	// Addr is the host:port of the HTTP API (always on 127.0.0.1).
	Addr string
	// NodeName is the agent's node name, unique per agent.
	NodeName string
	// Dir holds the agent's config file, data directory and log.
	Dir string
	// LogPath is the file the agent's stdout and stderr go to.
	LogPath string

	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait returns
	waitErr  error         // cmd.Wait's result, readable after exited closes
	stopOnce sync.Once
	stopErr  error
}

// Start starts an agent for the test and stops it when the test ends. A
// missing binary or an agent that does not come up fails the test.
func Start(t testing.TB) *Agent {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	// t.TempDir registers its removal before our Cleanup below, and cleanups
	// run last-in first-out, so the agent is stopped before its directory
	// is removed.
	a, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consultest: agent %s log tail:\n%s", a.NodeName, a.LogTail(40))
		}
		if err := a.Stop(); err != nil {
			t.Logf("consultest: stopping agent %s: %v", a.NodeName, err)
		}
	})
	return a
}

// StartProcess starts an agent outside any test, for TestMain and
// benchmarks. The returned function stops the agent and removes its
// directory; call it exactly once.
func StartProcess() (*Agent, func(), error) {
	bin, err := Binary()
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "consultest-")
	if err != nil {
		return nil, nil, fmt.Errorf("temp dir: %w", err)
	}
	a, err := start(bin, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		if err := a.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "consultest: stopping agent %s: %v\n", a.NodeName, err)
		}
		_ = os.RemoveAll(dir)
	}
	return a, stop, nil
}

// Client returns a Consul API client for the agent. Each call builds a new
// client (with its own connection pool) so a test can change its copy's
// settings freely: make one per test, not one per poll, or the agent's
// per-IP connection limit answers 429.
func (a *Agent) Client() *api.Client {
	c, err := api.NewClient(a.clientConfig())
	if err != nil {
		// NewClient fails only on bad TLS or token-file settings, which
		// clientConfig never sets.
		panic(fmt.Sprintf("consultest: api client for %s: %v", a.Addr, err))
	}
	return c
}

func (a *Agent) clientConfig() *api.Config {
	// Address, scheme and HTTP client are explicit because api.NewClient
	// fills empty fields from the CONSUL_* environment: a developer's
	// CONSUL_HTTP_ADDR or CONSUL_CACERT must not steer tests at a real
	// cluster or break them. (An env token is harmless: the dev agent runs
	// without ACLs.)
	return &api.Config{
		Address:    a.Addr,
		Scheme:     "http",
		HttpClient: &http.Client{Transport: cleanhttp.DefaultPooledTransport()},
	}
}

// Stop ends the agent: SIGTERM, then SIGKILL after a grace period. It is
// safe to call more than once.
// Freeze stops the agent process (SIGSTOP) so calls to it hang, as with a
// paused or partitioned server, and returns a function that thaws it. Tests
// use it to check that nothing waits on a stalled Consul forever.
func (a *Agent) Freeze(t testing.TB) (thaw func()) {
	t.Helper()
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze consul agent: %v", err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	return thaw
}

func (a *Agent) Stop() error {
	a.stopOnce.Do(func() { a.stopErr = a.stop() })
	return a.stopErr
}

func (a *Agent) stop() error {
	select {
	case <-a.exited:
		return nil // already gone (crashed); the log says why
	default:
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-a.exited:
		return nil
	case <-timer.C:
	}
	if err := a.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL after %s: %w", stopGrace, err)
	}
	<-a.exited
	return fmt.Errorf("agent ignored SIGTERM for %s and was killed", stopGrace)
}

// LogTail returns the last n lines of the agent's output.
func (a *Agent) LogTail(n int) string {
	b, err := os.ReadFile(a.LogPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", a.LogPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start launches an agent in dir, retrying with fresh ports when another
// process took one of the picked ports before the agent could bind it.
func start(bin, dir string) (*Agent, error) {
	var lastErr error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		adir := filepath.Join(dir, "agent-"+strconv.Itoa(attempt))
		a, err := launch(bin, adir)
		if err == nil {
			return a, nil
		}
		lastErr = err
		if a == nil || !strings.Contains(a.LogTail(200), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

// launch writes the config, starts the process and waits until it is ready.
// On failure it returns the (stopped) agent too, so start can read its log.
func launch(bin, dir string) (*Agent, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("picking free ports: %w", err)
	}
	httpPort, serfPort, serverPort := ports[0], ports[1], ports[2]
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	a := &Agent{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		NodeName: "consultest-" + hex.EncodeToString(suffix[:]),
		Dir:      dir,
		LogPath:  filepath.Join(dir, "agent.log"),
		exited:   make(chan struct{}),
	}
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(agentConfig(a.NodeName, filepath.Join(dir, "data"), httpPort, serfPort, serverPort)), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(a.LogPath)
	if err != nil {
		return nil, err
	}
	// The child gets its own copy of the descriptor, so ours can close as
	// soon as the process has started.
	defer logFile.Close()

	a.cmd = exec.Command(bin, "agent", "-dev", "-config-file="+cfgPath)
	a.cmd.Dir = dir
	a.cmd.Stdout = logFile
	a.cmd.Stderr = logFile
	a.cmd.Env = agentEnv()
	a.cmd.SysProcAttr = sysProcAttr()
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		a.waitErr = a.cmd.Wait()
		close(a.exited)
	}()

	if err := a.waitReady(); err != nil {
		_ = a.Stop()
		return a, fmt.Errorf("agent %s on %s not ready: %w\n--- agent log tail (%s) ---\n%s", a.NodeName, a.Addr, err, a.LogPath, a.LogTail(40))
	}
	return a, nil
}

// agentConfig is the agent's HCL. Only the three ports a dev server needs
// are opened (HTTP, Serf LAN, server RPC); DNS, HTTPS, gRPC, gRPC-TLS and
// Serf WAN are disabled so parallel agents have fewer ports to collide on.
func agentConfig(node, dataDir string, httpPort, serfPort, serverPort int) string {
	return fmt.Sprintf(`node_name = %q
datacenter = "dc1"
data_dir = %q
bind_addr = "127.0.0.1"
client_addr = "127.0.0.1"
advertise_addr = "127.0.0.1"
disable_update_check = true
log_level = "DEBUG"
ports {
  http = %d
  https = -1
  dns = -1
  grpc = -1
  grpc_tls = -1
  serf_lan = %d
  serf_wan = -1
  server = %d
}
`, node, dataDir, httpPort, serfPort, serverPort)
}

// agentEnv drops the developer's CONSUL_* variables: the agent must not,
// say, pick up a CONSUL_HTTP_TOKEN meant for a real cluster.
func agentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSUL_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls until the agent has a leader and its own node's serfHealth
// check passes. The leader alone is not enough: sessions (locks) are bound to
// the node's serfHealth check, and creating one before the node is
// registered fails.
func (a *Agent) waitReady() error {
	client := a.Client()
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-a.exited:
			return fmt.Errorf("agent exited: %v", a.waitErr)
		default:
		}
		if last = a.probe(client); last == nil {
			return nil
		}
		select {
		case <-a.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s: %w", readyTimeout, last)
}

func (a *Agent) probe(client *api.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var leader string
	if _, err := client.Raw().Query("/v1/status/leader", &leader, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("status/leader: %w", err)
	}
	if leader == "" {
		return errors.New("no leader elected yet")
	}
	checks, _, err := client.Health().Node(a.NodeName, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("health/node: %w", err)
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" && c.Status == api.HealthPassing {
			return nil
		}
	}
	return errors.New("node's serfHealth check not passing yet")
}

// freePorts returns n distinct loopback ports that were free for both TCP
// and UDP (Serf uses both on one port). All listeners stay open until every
// port is picked so the kernel cannot hand the same port out twice.
func freePorts(n int) ([]int, error) {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 50 {
			return nil, errors.New("no port free for both TCP and UDP after 50 tries")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, l.Close)
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // UDP side taken; keep the TCP listener so it is not re-picked
		}
		closers = append(closers, pc.Close)
		ports = append(ports, port)
	}
	return ports, nil
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// Binary returns the path of a Consul 1.14.11 binary, looked up once per
// process: $CONSUL_BIN, else `consul` on PATH when it is that version, else
// whatever scripts/install-consul.sh builds or has cached.
func Binary() (string, error) {
	binaryOnce.Do(func() { binaryPath, binaryErr = findBinary() })
	return binaryPath, binaryErr
}

func findBinary() (string, error) {
	if p := os.Getenv("CONSUL_BIN"); p != "" {
		// An explicit choice is trusted as to version; it must exist.
		if err := executable(p); err != nil {
			return "", fmt.Errorf("CONSUL_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	var notes []string
	if p, err := exec.LookPath("consul"); err == nil {
		out, err := exec.Command(p, "version").Output()
		if err == nil && bytes.Contains(out, []byte("v"+Version+"\n")) {
			return p, nil
		}
		first, _, _ := strings.Cut(string(out), "\n")
		notes = append(notes, fmt.Sprintf("%s is %q, not v%s", p, first, Version))
	}
	p, err := install()
	if err != nil {
		notes = append(notes, err.Error())
		return "", fmt.Errorf("no Consul v%s binary (set CONSUL_BIN, or run scripts/install-consul.sh): %s",
			Version, strings.Join(notes, "; "))
	}
	return p, nil
}

// install runs scripts/install-consul.sh, which prints the binary's path on
// the last line of its stdout (building it on first use).
func install() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "install-consul.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("install script: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", script, err, tail(stderr.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if err := executable(p); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", script, p, err)
	}
	return p, nil
}

// moduleRoot walks up to the go.mod of the module under test. It starts at
// the working directory (go test runs in the package's directory) and falls
// back to this source file's directory for binaries run from elsewhere.
func moduleRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if dir := sourceDir(); dir != "" {
		starts = append(starts, dir)
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if _, err := os.Stat(filepath.Join(d, "scripts", "install-consul.sh")); err == nil {
					return d, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("no module root with scripts/install-consul.sh above %v", starts)
}

// sourceDir is the directory of this file when the binary was built without
// -trimpath, else "".
func sourceDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	return filepath.Dir(file)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
