package policy

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Decision outcomes, the outcome label of the placement metrics.
const (
	outcomePlaced  = "placed"  // at least one peer allowed
	outcomeNoPeer  = "no_peer" // every candidate rejected (or none)
	outcomeFailed  = "error"   // evaluation failed or timed out: failed closed
	otherReason    = "other"
	maxReasonNames = 64
)

// engineMetrics are the placement metrics: how long decisions take, how
// they end, and why peers are rejected.
type engineMetrics struct {
	seconds    *prometheus.HistogramVec
	decisions  *prometheus.CounterVec
	rejections *prometheus.CounterVec
	reasons    reasonNames
}

func newEngineMetrics(reg prometheus.Registerer) *engineMetrics {
	m := &engineMetrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cloudmux", Subsystem: "placement", Name: "decision_seconds",
			Help: "Placement decision latency (policy evaluation over every candidate), by resource kind and outcome.",
			// Decisions take tens of microseconds to a few milliseconds;
			// the default buckets start at 5 ms and would hide them.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16),
		}, []string{"kind", "outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "placement", Name: "decisions_total",
			Help: "Placement decisions by resource kind and outcome (placed, no_peer, error).",
		}, []string{"kind", "outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "placement", Name: "rejections_total",
			Help: "Peers rejected by placement, by reason with numbers and IDs as N (at most 64 reasons, then other).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.seconds, m.decisions, m.rejections)
	}
	return m
}

// observe records one decision. d is empty when err is set.
func (m *engineMetrics) observe(kind string, d Decision, err error, elapsed time.Duration) {
	if m == nil {
		return
	}
	outcome := outcomePlaced
	switch {
	case err != nil:
		outcome = outcomeFailed
	case len(d.Verdicts) == 0 || !d.Verdicts[0].Allowed: // allowed sort first
		outcome = outcomeNoPeer
	}
	m.seconds.WithLabelValues(kind, outcome).Observe(elapsed.Seconds())
	m.decisions.WithLabelValues(kind, outcome).Inc()
	for _, v := range d.Verdicts {
		if v.Allowed {
			continue
		}
		for _, r := range v.Reasons {
			m.rejections.WithLabelValues(m.reasons.name(r)).Inc()
		}
	}
}

// reasonNames bounds the reason label. Reasons are text the policy writes,
// often with values in it, some of them a tenant's ("needs 4 vCPUs, 1
// free", "lacks required label gpu=a100", "not availability zone \"eu\""):
// every word that is not plain letters becomes N, text after a ':' is
// dropped, and only the first maxReasonNames distinct names get a series
// of their own, so neither numbers, IDs nor a tenant's hints can multiply
// the series.
type reasonNames struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (n *reasonNames) name(reason string) string {
	head, _, _ := strings.Cut(reason, ":")
	words := strings.Fields(head)
	for i, w := range words {
		if !plainWord(strings.TrimRight(w, ",.;")) {
			words[i] = "N" + w[len(strings.TrimRight(w, ",.;")):]
		}
	}
	head = strings.Join(words, " ")
	if head == "" || len(head) > 60 {
		return otherReason
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen[head] {
		return head
	}
	if len(n.seen) >= maxReasonNames {
		return otherReason
	}
	if n.seen == nil {
		n.seen = map[string]bool{}
	}
	n.seen[head] = true
	return head
}

// plainWord: letters only, as the words a policy writes itself are.
func plainWord(w string) bool {
	if w == "" {
		return false
	}
	for _, r := range w {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}
