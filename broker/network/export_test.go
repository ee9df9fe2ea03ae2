package network

import "context"

// Discover runs one pass of Run's background discovery, so tests need not
// wait for its ticker.
func (s *Service) Discover(ctx context.Context) { s.discover(ctx) }
