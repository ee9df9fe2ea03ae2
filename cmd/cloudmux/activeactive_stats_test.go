//go:build faults

package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// What the fault test reports beside its assertions: each kind of
// request's latency, and each surviving broker's size and Store calls,
// scraped from its /metrics.

// latencies is each kind of request's count, p50 and p99, to see where
// the load's time goes.
func (g *generator) latencies() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	kinds := make([]string, 0, len(g.took))
	for k := range g.took {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		ds := slices.Clone(g.took[k])
		slices.Sort(ds)
		fmt.Fprintf(&b, "\n  %-15s %5d  p50 %7.1f ms  p99 %7.1f ms", k, len(ds),
			ms(ds[len(ds)/2]), ms(ds[min(len(ds)-1, len(ds)*99/100)]))
	}
	return b.String()
}

type procStats struct {
	goroutines, rss int64
	// hist holds the _sum and _count series of the store's and the peers'
	// call latency histograms, by their whole name with labels.
	hist map[string]float64
}

// callsBetween is, for each store operation and peer call, how many a
// broker made between two scrapes and their mean latency: where a
// request's time goes.
func callsBetween(from, to procStats) string {
	var names []string
	for k := range to.hist {
		if base, ok := strings.CutSuffix(k, "_count"); ok {
			names = append(names, base)
		} else if i := strings.Index(k, "_count{"); i > 0 {
			names = append(names, k[:i]+k[i+len("_count"):])
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		count, sum := n+"_count", n+"_sum"
		if i := strings.Index(n, "{"); i > 0 {
			count, sum = n[:i]+"_count"+n[i:], n[:i]+"_sum"+n[i:]
		}
		c := to.hist[count] - from.hist[count]
		if c <= 0 {
			continue
		}
		fmt.Fprintf(&b, "\n  %-90s %7.0f calls  mean %6.1f ms", strings.TrimPrefix(n, "cloudmux_"), c, 1000*(to.hist[sum]-from.hist[sum])/c)
	}
	return b.String()
}

func scrapeProc(t *testing.T, b *devBroker) procStats {
	t.Helper()
	resp, err := http.Get(b.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	s := procStats{hist: map[string]float64{}}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		if strings.HasPrefix(f[0], "cloudmux_store_operation_seconds_") || strings.HasPrefix(f[0], "cloudmux_peer_request_seconds_") {
			if !strings.Contains(f[0], "_bucket{") {
				s.hist[f[0]] = v
			}
			continue
		}
		switch f[0] {
		case "go_goroutines":
			s.goroutines = int64(v)
		case "process_resident_memory_bytes":
			s.rss = int64(v)
		}
	}
	return s
}
