package consultest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Cluster is a real multi-server Consul datacenter on loopback: Servers
// run Raft (bootstrap_expect), Clients are client agents joined to them,
// the way brokers talk to Consul in production (each to its local client
// agent, which forwards to whichever server leads).
type Cluster struct {
	Servers []*Agent
	Clients []*Agent
	// serverAddrs maps each server's Raft address to it.
	serverAddrs map[string]*Agent
}

// StartCluster starts servers server agents and clients client agents,
// waits until the servers elect a leader and every agent is healthy, and
// stops them all when the test ends. Raft runs at raft_multiplier 1 (the
// production recommendation), so an election after a leader dies takes
// about a second or two.
func StartCluster(t testing.TB, servers, clients int) *Cluster {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	root := t.TempDir()
	ports, err := freePorts(3 * (servers + clients))
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	var join []string
	for i := range servers {
		join = append(join, fmt.Sprintf("%q", "127.0.0.1:"+strconv.Itoa(ports[3*i+1])))
	}
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	c := &Cluster{serverAddrs: map[string]*Agent{}}
	var all []*Agent
	for i := range servers + clients {
		server := i < servers
		role := "client"
		if server {
			role = "server"
		}
		name := fmt.Sprintf("consultest-%s-%s%d", hex.EncodeToString(suffix[:]), role, i)
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		httpPort, serfPort, serverPort := ports[3*i], ports[3*i+1], ports[3*i+2]
		hcl := agentConfig(name, filepath.Join(dir, "data"), httpPort, serfPort, serverPort) + fmt.Sprintf(`server = %t
retry_join = [%s]
retry_interval = "1s"
performance { raft_multiplier = 1 }
leave_on_terminate = false
`, server, strings.Join(join, ", "))
		if server {
			hcl += fmt.Sprintf("bootstrap_expect = %d\n", servers)
		}
		a, err := spawn(bin, dir, name, hcl, httpPort)
		if err != nil {
			t.Fatalf("consultest: %v", err)
		}
		all = append(all, a)
		if server {
			c.Servers = append(c.Servers, a)
			c.serverAddrs["127.0.0.1:"+strconv.Itoa(serverPort)] = a
		} else {
			c.Clients = append(c.Clients, a)
		}
	}
	t.Cleanup(func() {
		for _, a := range all {
			if t.Failed() {
				t.Logf("consultest: agent %s log tail:\n%s", a.NodeName, a.LogTail(20))
			}
			_ = a.Stop()
		}
	})
	for _, a := range all {
		if err := a.waitReady(); err != nil {
			t.Fatalf("consultest: cluster agent %s: %v\n%s", a.NodeName, err, a.LogTail(40))
		}
	}
	return c
}

// spawn starts an agent with the given config without waiting for it.
func spawn(bin, dir, name, hcl string, httpPort int) (*Agent, error) {
	a := &Agent{
		Addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		NodeName: name,
		Dir:      dir,
		LogPath:  filepath.Join(dir, "agent.log"),
		exited:   make(chan struct{}),
	}
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(hcl), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(a.LogPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	a.cmd = exec.Command(bin, "agent", "-config-file="+cfgPath)
	a.cmd.Dir = dir
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	a.cmd.Env = agentEnv()
	a.cmd.SysProcAttr = sysProcAttr()
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		a.waitErr = a.cmd.Wait()
		close(a.exited)
	}()
	return a, nil
}

// Leader returns the server that leads now, asking the live agents.
func (c *Cluster) Leader(ctx context.Context) (*Agent, error) {
	for _, a := range append(append([]*Agent{}, c.Servers...), c.Clients...) {
		select {
		case <-a.exited:
			continue
		default:
		}
		var leader string
		if _, err := a.Client().Raw().Query("/v1/status/leader", &leader, (&api.QueryOptions{}).WithContext(ctx)); err != nil || leader == "" {
			continue
		}
		if s, ok := c.serverAddrs[leader]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("the leader %s is no server of this cluster", leader)
	}
	return nil, errors.New("no agent names a leader")
}

// Kill ends an agent with SIGKILL, as a crashed machine would: no leave,
// no goodbye to the others.
func (a *Agent) Kill() error {
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-a.exited:
		return nil
	case <-time.After(stopGrace):
		return errors.New("the agent did not die after SIGKILL")
	}
}
