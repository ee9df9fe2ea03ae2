package quota

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ledger's: reservations made and refused (by the limit
// that refused them), and how they end.
type Metrics struct {
	reserves *prometheus.CounterVec
	refusals *prometheus.CounterVec
	ends     *prometheus.CounterVec
}

// NewMetrics registers the quota metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reserves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "quota", Name: "reservations_total",
			Help: "Quota reservations asked for, by outcome: reserved, refused (over a limit), error (the ledger could not be read or written).",
		}, []string{"outcome"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "quota", Name: "refusals_total",
			Help: "Quota refusals by the resource whose limit refused (one refusal may count under several).",
		}, []string{"resource"}),
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "quota", Name: "reservations_ended_total",
			Help: "Reservations ended, by how: commit (the resource exists) or release (the create failed).",
		}, []string{"how"}),
	}
	reg.MustRegister(m.reserves, m.refusals, m.ends)
	return m
}

func (m *Metrics) reserved(err error) {
	if m == nil {
		return
	}
	var over *OverError
	switch {
	case err == nil:
		m.reserves.WithLabelValues("reserved").Inc()
	case errors.As(err, &over):
		m.reserves.WithLabelValues("refused").Inc()
		for _, o := range over.Over {
			m.refusals.WithLabelValues(string(o.Resource)).Inc()
		}
	default:
		m.reserves.WithLabelValues("error").Inc()
	}
}

func (m *Metrics) ended(how string) {
	if m != nil {
		m.ends.WithLabelValues(how).Inc()
	}
}
