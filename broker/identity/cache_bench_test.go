package identity_test

import (
	"context"
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// BenchmarkEC2Authorize is what every EC2 request costs to resolve its
// access key to a token (Lookup, Authorize), with the directory over the
// Store itself and over a running Cache, on the memory Store and on a
// real Consul agent (skipped without CONSUL_BIN).
func BenchmarkEC2Authorize(b *testing.B) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	stores := []struct {
		name string
		open func(b *testing.B) registry.Store
	}{
		{"memory", func(*testing.B) registry.Store { return registry.NewMemory() }},
		{"consul", func(b *testing.B) registry.Store {
			if _, err := consultest.Binary(); err != nil {
				b.Skip("no Consul agent: ", err)
			}
			agent := consultest.Start(b)
			s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "bench/"}, log)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		for _, cached := range []bool{false, true} {
			name := st.name + "/store"
			if cached {
				name = st.name + "/cache"
			}
			b.Run(name, func(b *testing.B) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				store := st.open(b)
				dir := identity.NewDirectory(store)
				if cached {
					cache := identity.NewCache(store, log)
					go func() { _ = cache.Run(ctx) }()
					if err := cache.WaitReady(ctx); err != nil {
						b.Fatal(err)
					}
					dir = identity.NewDirectory(cache)
				}
				boot, err := dir.Bootstrap(ctx, "admin-password", true)
				if err != nil {
					b.Fatal(err)
				}
				creds := identity.NewEC2Credentials(dir)
				cred, err := creds.Create(ctx, boot.User.ID, boot.Project.ID)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					c, err := creds.Lookup(ctx, cred.Access)
					if err == nil {
						_, err = creds.Authorize(ctx, c)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
