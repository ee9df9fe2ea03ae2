package registry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// failoverStore plays what a Mirror saw when a Consul leader died: a watch
// fails, the next list is answered before the new leader applied every
// write (a key is missing), and the watch on that answer then sleeps
// through the missing key's arrival. Only a second list finds it.
type failoverStore struct {
	mu      sync.Mutex
	lists   int
	watches int
}

var errLeaderGone = errors.New("rpc error making call: EOF")

func (s *failoverStore) Get(context.Context, string) (KV, error) { return KV{}, ErrNotFound }

func (s *failoverStore) List(context.Context, string) ([]KV, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	switch s.lists {
	case 1: // before the failover
		return []KV{{Key: "p/a", Value: []byte("a"), ModifyIndex: 10}}, 10, nil
	case 2: // the new leader's first, stale, answer
		return []KV{{Key: "p/a", Value: []byte("a"), ModifyIndex: 10}}, 11, nil
	default:
		return []KV{{Key: "p/a", Value: []byte("a"), ModifyIndex: 10}, {Key: "p/b", Value: []byte("b"), ModifyIndex: 12}}, 12, nil
	}
}

func (s *failoverStore) Watch(ctx context.Context, _ string, _ uint64) ([]KV, uint64, error) {
	s.mu.Lock()
	s.watches++
	n := s.watches
	s.mu.Unlock()
	if n == 1 {
		return nil, 0, errLeaderGone
	}
	<-ctx.Done() // a blocking query nobody wakes
	return nil, 0, ctx.Err()
}

// TestMirrorResyncsAfterFailover: after a Store error, the first answers
// are not trusted alone: the prefix is listed whole again mirrorResync
// later, which brings what a stale answer lacked.
func TestMirrorResyncsAfterFailover(t *testing.T) {
	store := &failoverStore{}
	sink := &mapSink{m: map[string]string{}}
	m := NewMirror[string](store, "p/", decodeString, sink, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = m.Run(ctx) }()
	for {
		if sink.snapshot()["p/b"] == "b" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the key the stale answer lacked was never mirrored")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
