package peers

import (
	"context"
	"sync"
	"time"
)

// Result is one member's answer to a fan-out.
type Result[T any] struct {
	Member *Member
	Value  T
	Err    error
}

// Gather calls fn on every member in parallel, each under its own deadline
// (perPeer), and returns every answer in members' order. A slow or failing
// member yields its error and never holds up the others beyond perPeer:
// callers merge what came back and flag the rest as partial.
func Gather[T any](ctx context.Context, members []*Member, perPeer time.Duration, fn func(ctx context.Context, m *Member) (T, error)) []Result[T] {
	out := make([]Result[T], len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i].Member = m
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, perPeer)
			defer cancel()
			type answer struct {
				v   T
				err error
			}
			ch := make(chan answer, 1) // buffered: a late answer never blocks its sender
			go func() {
				v, err := fn(pctx, m)
				ch <- answer{v, err}
			}()
			select {
			case a := <-ch:
				out[i].Value, out[i].Err = a.v, a.err
			case <-pctx.Done():
				// A driver that ignores its context must not hang the
				// caller: answer for it; its late answer is dropped.
				out[i].Err = pctx.Err()
			}
		}()
	}
	wg.Wait()
	return out
}
