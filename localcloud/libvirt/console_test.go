package libvirt_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
)

// placeholderLine is what the seeded placeholder image prints on its
// serial console (localcloud.PlaceholderDisk).
const placeholderLine = "cloudmux placeholder image"

// TestRemoteConsoleLeaksNothing reads a running guest's console through
// libvirtd (StorageVolDownload, as for a remote host) many times, and
// counts goroutines: a download must leave none behind. go-libvirt's own
// stream code could strand two goroutines and a connection per read.
func TestRemoteConsoleLeaksNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest; skipped with -short")
	}
	poll := localcloudtest.Poll{Timeout: 2 * time.Minute, Every: 100 * time.Millisecond}
	tc := seededCloud(t, "qemu:///system")
	c, seeded, ctx := tc.Cloud, tc.Seeded, t.Context()
	srv, err := c.CreateServer(ctx, peers.ServerSpec{Name: "console", Project: "p", FlavorID: "42", ImageID: seeded.ImageID})
	if err != nil {
		t.Fatal(err)
	}
	poll.WaitFor(t, "the guest's line on its console", func() (bool, string) {
		out, err := c.ConsoleOutput(ctx, srv.ID, 0)
		return strings.Contains(out, placeholderLine), fmt.Sprintf("%q %v", out, err)
	})
	libvirt.ReadConsoleThroughLibvirt(tc.Driver)
	read := func() {
		t.Helper()
		out, err := c.ConsoleOutput(ctx, srv.ID, 0)
		if err != nil || !strings.Contains(out, placeholderLine) {
			t.Fatalf("console through libvirtd = %q, %v", out, err)
		}
	}
	read() // the first read may start what lasts (the connection's own goroutines)
	before := runtime.NumGoroutine()
	const reads = 30
	for range reads {
		read()
	}
	// Goroutines that are ending may need a moment to be gone.
	settle := localcloudtest.Poll{Timeout: 10 * time.Second, Every: 10 * time.Millisecond}
	settle.WaitFor(t, "goroutines back to their number before the reads", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines after %d reads, %d before", n, reads, before)
	})
	localcloudtest.DeleteAll(t, c, []string{srv.ID})
	deleteSeeded(t, c, seeded)
}
