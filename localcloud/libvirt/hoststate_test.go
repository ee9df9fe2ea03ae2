package libvirt_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// hostNetState is what the network-safety rule says a test must leave as
// it was: the host's firewall (iptables-save and ip6tables-save, without
// comments and counters), its links (ip -br link: a bridge or tap device
// made would show), forwarding and the bridge netfilter switch. It only
// reads.
func hostNetState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range [][]string{{"iptables-save"}, {"ip6tables-save"}, {"ip", "-br", "link"}} {
		out, err := exec.Command(cmd[0], cmd[1:]...).Output()
		if err != nil {
			t.Logf("%s: %v (not compared)", cmd[0], err)
			continue
		}
		b.WriteString("## " + strings.Join(cmd, " ") + "\n")
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasPrefix(l, ":") { // chain policy [packets:bytes]
				if i := strings.LastIndex(l, " ["); i > 0 {
					l = l[:i]
				}
			}
			b.WriteString(l + "\n")
		}
	}
	for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/bridge/bridge-nf-call-iptables"} {
		v, err := os.ReadFile(f)
		if err != nil {
			v = []byte("absent\n")
		}
		b.WriteString(f + " " + string(v))
	}
	return b.String()
}

// checkHostNetUnchanged records the host's network state now and, when
// the test is over (after every other cleanup: guests are gone), fails it
// if anything differs.
func checkHostNetUnchanged(t *testing.T) {
	t.Helper()
	before := hostNetState(t)
	t.Cleanup(func() {
		after := hostNetState(t)
		if after != before {
			t.Errorf("the host's firewall or links changed during the test:\n--- before\n%s\n--- after\n%s", before, after)
		}
	})
}

// bootGuest creates a server from spec and waits until it is ACTIVE with
// an address; it is deleted (and waited for) at cleanup.
func bootGuest(t *testing.T, ctx context.Context, c *localcloud.Cloud, spec peers.ServerSpec) peers.Server {
	t.Helper()
	srv, err := c.CreateServer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateServer(%s): %v", spec.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_ = c.DeleteServer(ctx, srv.ID)
		waitFor(t, ctx, spec.Name+" gone", func() (struct{}, bool, error) {
			_, err := c.GetServer(ctx, srv.ID)
			return struct{}{}, errors.Is(err, peers.ErrNotFound), nil
		})
	})
	return waitFor(t, ctx, spec.Name+" ACTIVE", func() (peers.Server, bool, error) {
		s, err := c.GetServer(ctx, srv.ID)
		if s.Status == peers.ServerError {
			return s, false, errors.New(s.Fault)
		}
		return s, s.Status == peers.ServerActive && len(s.Addresses) > 0, err
	})
}

// consoleLines is a server's console output, line by line.
func consoleLines(t *testing.T, ctx context.Context, c *localcloud.Cloud, id string) []string {
	t.Helper()
	out, err := c.ConsoleOutput(ctx, id, 0)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	return strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
}

// guestTest starts a test booting real guests: skipped with -short, the
// host's network state checked at the end, a cloud on qemu:///system with
// the guest image, and a context bounding the test.
func guestTest(t *testing.T, what string, timeout time.Duration) (context.Context, *localcloud.Cloud, peers.Image) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + "; skipped with -short")
	}
	checkHostNetUnchanged(t)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	c, _, _, img := guestCloud(t, ctx)
	t.Cleanup(func() { _ = c.DeleteImage(context.Background(), img.ID) })
	return ctx, c, img
}

// probeCounts tallies a server's console lines "<kind> N ok|fail".
func probeCounts(t *testing.T, ctx context.Context, c *localcloud.Cloud, id, kind string) (oks, fails int) {
	t.Helper()
	for _, l := range consoleLines(t, ctx, c, id) {
		var n int
		var res string
		if _, err := fmt.Sscanf(strings.TrimSpace(l), kind+" %d %s", &n, &res); err != nil {
			continue
		}
		if res == "ok" {
			oks++
		} else {
			fails++
		}
	}
	return oks, fails
}

// testNetwork creates a network with one IPv4 subnet, deleted at cleanup.
func testNetwork(t *testing.T, ctx context.Context, c *localcloud.Cloud, name, cidr string, external bool) (peers.Network, peers.Subnet) {
	t.Helper()
	n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: name, Project: "p", External: external})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DeleteNetwork(context.Background(), n.ID); err != nil {
			t.Errorf("cleanup: DeleteNetwork(%s): %v", name, err)
		}
	})
	sn, err := c.CreateSubnet(ctx, peers.SubnetSpec{NetworkID: n.ID, Project: "p", CIDR: cidr, IPVersion: 4})
	if err != nil {
		t.Fatal(err)
	}
	return n, sn
}

// fixedPort creates a port on n at ip, deleted at cleanup.
func fixedPort(t *testing.T, ctx context.Context, c *localcloud.Cloud, n peers.Network, ip string) peers.Port {
	t.Helper()
	p, err := c.CreatePort(ctx, peers.PortSpec{Name: "p-" + ip, Project: "p", NetworkID: n.ID, FixedIPs: []peers.FixedIP{{IPAddress: ip}}})
	if err != nil {
		t.Fatalf("CreatePort(%s): %v", ip, err)
	}
	t.Cleanup(func() { _ = c.DeletePort(context.Background(), p.ID) })
	return p
}
