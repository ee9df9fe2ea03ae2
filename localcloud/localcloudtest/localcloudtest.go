// Package localcloudtest holds what the local cloud's test suites share,
// whichever driver they run on: a logger whose output a failing test
// prints, and creating servers in bulk for the benchmarks.
package localcloudtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// syncBuffer collects a log written from background goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Logger logs into a buffer that tb prints if it fails. Its cleanup is
// registered first, so it runs last, after the cloud is closed.
func Logger(tb testing.TB) logrus.FieldLogger {
	buf := &syncBuffer{}
	l := logrus.New()
	l.SetOutput(buf)
	l.SetLevel(logrus.DebugLevel)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("log:\n%s", buf.String())
		}
	})
	return l
}

// CreateActive creates n servers at once from the seeded image on the
// seeded network and waits until every one is ACTIVE; it returns their IDs.
func CreateActive(tb testing.TB, c *localcloud.Cloud, seeded localcloud.Seeded, n int) []string {
	tb.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			srv, err := c.CreateServer(ctx, peers.ServerSpec{Name: fmt.Sprintf("bench-%d", i), Project: "bench", FlavorID: "42",
				ImageID: seeded.ImageID, Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}}})
			if err != nil {
				errs <- err
				return
			}
			ids[i] = srv.ID
			for {
				s, err := c.GetServer(ctx, srv.ID)
				if err != nil || s.Status == peers.ServerError {
					errs <- fmt.Errorf("server %s: %v %s", srv.ID, err, s.Fault)
					return
				}
				if s.Status == peers.ServerActive {
					return
				}
				time.Sleep(time.Millisecond) // polling a transition, not a correctness gate
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return ids
}

// DeleteAll deletes the servers and waits until each is gone.
func DeleteAll(tb testing.TB, c *localcloud.Cloud, ids []string) {
	tb.Helper()
	ctx := context.Background()
	for _, id := range ids {
		if err := c.DeleteServer(ctx, id); err != nil {
			tb.Fatal(err)
		}
	}
	for _, id := range ids {
		for {
			_, err := c.GetServer(ctx, id)
			if errors.Is(err, peers.ErrNotFound) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			time.Sleep(time.Millisecond) // polling a transition, not a correctness gate
		}
	}
}
