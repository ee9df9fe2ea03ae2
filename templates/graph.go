package templates

import (
	"fmt"
	"slices"
	"strings"
)

// Dependencies returns, for every resource, the resources it depends on:
// its depends_on plus every get_resource and get_attr target in its
// properties, count and condition-free values. Names that are not
// resources are left out (Validate reports them).
func (t *Template) Dependencies() map[string][]string {
	out := make(map[string][]string, len(t.Resources))
	for name, r := range t.Resources {
		set := map[string]bool{}
		for _, d := range r.DependsOn {
			set[d] = true
		}
		for d := range collectRefs(r.Properties).resources {
			set[d] = true
		}
		for d := range collectRefs(r.Count).resources {
			set[d] = true
		}
		var deps []string
		for d := range set {
			if _, ok := t.Resources[d]; ok {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		out[name] = deps
	}
	return out
}

// Order returns the resources in an order that creates every dependency
// before its dependents (ties by name), or an error naming a cycle.
func (t *Template) Order() ([]string, error) {
	deps := t.Dependencies()
	if cs := cycles(deps); len(cs) > 0 {
		return nil, fmt.Errorf("%w: dependency cycle %s", ErrInvalid, strings.Join(cs[0], " -> "))
	}
	return topo(deps), nil
}

// topo orders an acyclic graph, dependencies first, ties by name.
func topo(deps map[string][]string) []string {
	done := map[string]bool{}
	var out []string
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range deps[n] {
			visit(d)
		}
		out = append(out, n)
	}
	for _, n := range sortedKeys(deps) {
		visit(n)
	}
	return out
}

// cycles finds the strongly connected components of more than one node
// (or a node depending on itself) with Tarjan's algorithm and returns one
// cycle through each, as a path that ends where it starts.
func cycles(deps map[string][]string) [][]string {
	index, low := map[string]int{}, map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var comps [][]string
	next := 0
	var strong func(v string)
	strong = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range deps[v] {
			if _, seen := index[w]; !seen {
				strong(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []string
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 || slices.Contains(deps[v], v) {
				comps = append(comps, comp)
			}
		}
	}
	for _, v := range sortedKeys(deps) {
		if _, seen := index[v]; !seen {
			strong(v)
		}
	}
	var out [][]string
	for _, comp := range comps {
		slices.Sort(comp)
		out = append(out, cycleThrough(comp[0], comp, deps))
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// cycleThrough finds a path from start back to start inside comp (a BFS,
// so the shortest cycle through start).
func cycleThrough(start string, comp []string, deps map[string][]string) []string {
	in := map[string]bool{}
	for _, c := range comp {
		in[c] = true
	}
	prev := map[string]string{}
	queue := []string{start}
	seen := map[string]bool{}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range deps[v] {
			if !in[w] {
				continue
			}
			if w == start {
				path := []string{start}
				for x := v; x != start; x = prev[x] {
					path = append(path, x)
				}
				slices.Reverse(path[1:])
				return append(path, start)
			}
			if !seen[w] {
				seen[w], prev[w] = true, v
				queue = append(queue, w)
			}
		}
	}
	return []string{start, start}
}
