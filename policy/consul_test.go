package policy_test

import (
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// TestHotReloadConsul: a policy activated through one broker's Consul
// store reaches a second broker's engine (its own Consul client, as a
// second process would have) through the blocking-query watch. The time it
// took is logged (go test -v): the figure the issue asks for.
func TestHotReloadConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	agent := consultest.Start(t)
	log := logrus.New()
	log.SetOutput(io.Discard)
	open := func() *consul.Store {
		s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "policytest/"}, log)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i := range 3 {
		t.Logf("consul: activation %d reached the second broker's engine in %s", i+1, followLatency(t, open(), open()))
	}
}
