package index

import "github.com/prometheus/client_golang/prometheus"

// Collector reports the index's size from memory at scrape time
// (cloudmux_index_entries by kind, cloudmux_index_projects by kind): what
// the broker tracks, and how much memory its hot path holds.
func (x *Index) Collector() prometheus.Collector {
	return sizeCollector{
		mem:      x.mem,
		entries:  prometheus.NewDesc("cloudmux_index_entries", "Resources in the broker's in-memory index, by kind.", []string{"kind"}, nil),
		projects: prometheus.NewDesc("cloudmux_index_projects", "Projects with at least one resource of the kind in the index.", []string{"kind"}, nil),
	}
}

type sizeCollector struct {
	mem               *memory
	entries, projects *prometheus.Desc
}

func (c sizeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.entries; ch <- c.projects }

func (c sizeCollector) Collect(ch chan<- prometheus.Metric) {
	type size struct {
		kind              string
		entries, projects int
	}
	// Counted under the lock, sent after it: a slow scrape never holds
	// up the index's writers.
	c.mem.mu.RLock()
	sizes := make([]size, 0, len(c.mem.byID))
	for kind, ids := range c.mem.byID {
		sizes = append(sizes, size{kind, len(ids), len(c.mem.byProject[kind])})
	}
	c.mem.mu.RUnlock()
	for _, s := range sizes {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.entries), s.kind)
		ch <- prometheus.MustNewConstMetric(c.projects, prometheus.GaugeValue, float64(s.projects), s.kind)
	}
}
