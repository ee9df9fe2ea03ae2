package ui

import (
	"fmt"
	"html/template"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/templates/deploy"
)

// Sizes of the dependency graph's drawing, in SVG units.
const (
	nodeW, nodeH   = 190, 46
	colGap, rowGap = 60, 18
	margin         = 12
)

// graphSVG draws a deployment's instances as a left-to-right dependency
// graph: each instance in the column after the deepest of its
// dependencies, an edge from each dependency, coloured by status (CSS
// classes; the CSP allows no inline style). It is one line, so it fits
// one SSE data line.
func graphSVG(d *deploy.Deployment) template.HTML {
	keys := make([]string, 0, len(d.Resources))
	for k := range d.Resources {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	depth := map[string]int{}
	var depthOf func(k string, seen map[string]bool) int
	depthOf = func(k string, seen map[string]bool) int {
		if v, ok := depth[k]; ok {
			return v
		}
		if seen[k] { // a cycle cannot be planned; draw it flat rather than loop
			return 0
		}
		seen[k] = true
		n := 0
		for _, dep := range d.Resources[k].Deps {
			if _, ok := d.Resources[dep]; ok {
				n = max(n, depthOf(dep, seen)+1)
			}
		}
		depth[k] = n
		return n
	}
	cols := map[int][]string{}
	maxCol, maxRow := 0, 0
	for _, k := range keys {
		c := depthOf(k, map[string]bool{})
		cols[c] = append(cols[c], k)
		maxCol, maxRow = max(maxCol, c), max(maxRow, len(cols[c]))
	}
	type pos struct{ x, y int }
	at := map[string]pos{}
	for c, ks := range cols {
		for i, k := range ks {
			at[k] = pos{margin + c*(nodeW+colGap), margin + i*(nodeH+rowGap)}
		}
	}
	w := 2*margin + (maxCol+1)*nodeW + maxCol*colGap
	h := 2*margin + max(1, maxRow)*(nodeH+rowGap) - rowGap
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="graph" id="graph" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="dependency graph">`, w, h, w, h)
	for _, k := range keys {
		for _, dep := range d.Resources[k].Deps {
			from, ok := at[dep]
			if !ok {
				continue
			}
			to := at[k]
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d"/>`, from.x+nodeW, from.y+nodeH/2, to.x, to.y+nodeH/2)
		}
	}
	for _, k := range keys {
		r, p := d.Resources[k], at[k]
		status := strings.ToLower(string(r.Status))
		fmt.Fprintf(&b, `<g class="node st-%s" data-key="%s" data-status="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="4"/>`,
			template.HTMLEscapeString(status), template.HTMLEscapeString(k), template.HTMLEscapeString(string(r.Status)), p.x, p.y, nodeW, nodeH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`, p.x+8, p.y+18, template.HTMLEscapeString(clip(k, 24)))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text></g>`, p.x+8, p.y+36,
			template.HTMLEscapeString(clip(fmt.Sprintf("%s · %s · %s", r.Kind, r.Status, r.PeerName), 30)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every interpolated string is escaped above
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
