package consul

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// Liveness: a broker's leases should end soon after the broker does, so
// another broker resumes its work. A session's TTL alone cannot give that:
// Consul invalidates a TTL session between one and two TTLs after its last
// renewal (the server arms its timer at twice the TTL), TTLs start at 10s,
// and a newly elected leader re-arms every session's timer from scratch, so
// a broker that dies beside a Consul leader holds its locks for up to ~40s.
//
// Consul's own answer is a session bound to a health check: the session is
// invalidated as soon as the check turns critical. StartLiveness registers
// this broker as an instance of BrokerServiceName on the local agent with a
// TTL check it keeps passing, and every session created afterwards is bound
// to that check (and to serfHealth, the node's, as by default). A broker
// killed with SIGKILL stops passing the check; the agent marks it critical
// after LivenessTTL and the leader invalidates the broker's sessions with
// it. The session TTL stays as the backstop for an agent that dies too.
const (
	// BrokerServiceName is the catalog service brokers register as, so
	// `consul catalog services` and the health API show the live brokers.
	BrokerServiceName = "cloudmux-broker"

	// LivenessTTL is how long the broker's check stays passing without an
	// update. A stall this long (a process frozen, a machine swapping) ends
	// every lease the broker holds, which is safe (the work resumes
	// elsewhere or here) but costly, so it is well above the update period.
	LivenessTTL = 5 * time.Second

	// livenessEvery is how often the check is set passing: a local agent
	// call, which reaches the servers only when the status changes.
	livenessEvery = time.Second

	// livenessDeregisterAfter removes a dead broker's instance from the
	// agent (Consul's minimum is one minute).
	livenessDeregisterAfter = time.Minute
)

// BrokerServiceID is the catalog instance of the broker named holder.
func BrokerServiceID(holder string) string { return BrokerServiceName + "-" + holder }

// BrokerCheckID is the ID of the broker's TTL check.
func BrokerCheckID(holder string) string { return BrokerServiceID(holder) + "-live" }

// liveness is what TryLock reads: the check new sessions are bound to, or
// "" before StartLiveness registered it (or when the agent refused it).
type liveness struct{ check atomic.Pointer[string] }

func (l *liveness) checkID() string {
	if p := l.check.Load(); p != nil {
		return *p
	}
	return ""
}

// StartLiveness registers this broker (holder, its ID among the replicas)
// on the local agent, binds the sessions TryLock creates from then on to
// its check, and keeps the check passing in the background until ctx
// ends, when it deregisters the instance (a clean stop releases its leases
// anyway); done is closed then. Call it before taking leases: it returns
// once the first registration was answered. An agent it cannot reach yet
// is asked again every livenessEvery (sessions live by their TTL alone
// until then); one that refuses the registration (an ACL token without
// service:write) is logged and left alone.
func (s *Store) StartLiveness(ctx context.Context, holder string) (done <-chan struct{}) {
	stopped := make(chan struct{})
	l := &keeper{s: s, holder: holder, check: BrokerCheckID(holder)}
	first, cancel := context.WithTimeout(ctx, 5*time.Second)
	l.register(first)
	cancel()
	go func() {
		defer close(stopped)
		l.run(ctx)
		s.live.check.Store(nil)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_ = s.client.Agent().ServiceDeregisterOpts(BrokerServiceID(holder), (&api.QueryOptions{}).WithContext(dctx))
	}()
	return stopped
}

// keeper keeps one broker's liveness check registered and passing.
type keeper struct {
	s             *Store
	holder, check string
	registered    bool
	refused       bool // the agent's ACLs refuse us: stop asking
	failing       bool // the last call failed (logged once per outage)
}

func (l *keeper) run(ctx context.Context) {
	t := time.NewTicker(livenessEvery)
	defer t.Stop()
	for !l.refused {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !l.registered {
			l.register(ctx)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, livenessEvery)
		err := l.s.client.Agent().UpdateTTLOpts(l.check, "", api.HealthPassing, (&api.QueryOptions{}).WithContext(cctx))
		cancel()
		var status api.StatusError
		if errors.As(err, &status) && status.Code == http.StatusNotFound {
			// The agent restarted without our registration, or reaped it
			// after a long stall: register again.
			l.register(ctx)
			continue
		}
		l.outcome(ctx, err)
	}
	<-ctx.Done()
}

func (l *keeper) register(ctx context.Context) {
	err := l.s.registerBroker(ctx, l.holder)
	var status api.StatusError
	if errors.As(err, &status) && status.Code == http.StatusForbidden {
		l.refused = true
		l.s.log.WithError(err).Warn("consul: the ACL token may not register this broker's liveness check " +
			"(service:write on " + BrokerServiceName + "); its leases end only by their TTL, one to two TTLs after it dies")
		return
	}
	l.outcome(ctx, err)
	if err == nil {
		l.registered = true
		l.s.live.check.Store(&l.check)
	}
}

// outcome logs the first failure of an outage and the recovery.
func (l *keeper) outcome(ctx context.Context, err error) {
	switch {
	case err != nil && !l.failing && ctx.Err() == nil:
		l.failing = true
		l.s.log.WithError(err).Warn("consul: cannot keep this broker's liveness check passing; retrying")
	case err == nil && l.failing:
		l.failing = false
		l.s.log.Info("consul: this broker's liveness check is passing again")
	}
}

func (s *Store) registerBroker(ctx context.Context, holder string) error {
	reg := &api.AgentServiceRegistration{
		ID:   BrokerServiceID(holder),
		Name: BrokerServiceName,
		Meta: map[string]string{"broker_id": holder},
		Check: &api.AgentServiceCheck{
			CheckID:                        BrokerCheckID(holder),
			Name:                           "cloudmux broker " + holder + " is alive",
			TTL:                            LivenessTTL.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: livenessDeregisterAfter.String(),
		},
	}
	return s.client.Agent().ServiceRegisterOpts(reg, api.ServiceRegisterOpts{}.WithContext(ctx))
}

// sessionChecks are the health checks a new session is bound to: the
// node's serfHealth (Consul's default when none are named) and, once
// StartLiveness registered it, this broker's own check.
func (s *Store) sessionChecks() (node []string, service []api.ServiceCheck) {
	id := s.live.checkID()
	if id == "" {
		return nil, nil // Consul's default: serfHealth
	}
	return []string{"serfHealth"}, []api.ServiceCheck{{ID: id}}
}
