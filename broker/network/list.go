package network

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
)

// listParams are the query parameters that are not attribute filters.
var listParams = map[string]bool{"fields": true, "limit": true, "marker": true, "sort_key": true, "sort_dir": true, "page_reverse": true}

// matchesList applies the filters on list-valued attributes: tags (no
// resource here has any, so asking for one matches nothing) and fixed_ips
// ("ip_address=10.0.0.3", "subnet_id=..."; several must all hold for one
// address). Other keys pass.
func matchesList(key string, want []string, it map[string]any) bool {
	switch key {
	case "tags", "tags-any":
		return slices.Equal(want, []string{""})
	case "fixed_ips":
		// Values of one key are alternatives; different keys must all
		// hold for the same address, as Neutron joins them.
		alts := map[string][]string{}
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			alts[k] = append(alts[k], v)
		}
		ips, _ := it["fixed_ips"].([]map[string]string)
		return slices.ContainsFunc(ips, func(ip map[string]string) bool {
			for k, vs := range alts {
				ok := slices.ContainsFunc(vs, func(v string) bool {
					if k == "ip_address_substr" {
						return strings.Contains(ip["ip_address"], v)
					}
					return ip[k] == v
				})
				if !ok {
					return false
				}
			}
			return true
		})
	}
	return true
}

// scalar reports whether v is an attribute value filters and sorts apply
// to (not a list or an object).
func scalar(v any) bool {
	switch v.(type) {
	case string, bool, int, nil:
		return true
	}
	return false
}

// matchesValue reports whether a filter value selects an attribute value,
// as Neutron converts filters to the attribute's type: booleans accept
// true/false in any case and 1/0, integers compare as numbers, strings
// (names, IDs) must be equal exactly.
func matchesValue(got any, want string) bool {
	switch x := got.(type) {
	case string:
		return x == want
	case bool:
		switch strings.ToLower(want) {
		case "true", "1":
			return x
		case "false", "0":
			return !x
		}
		return false
	case int:
		n, err := strconv.Atoi(want)
		return err == nil && n == x
	case nil:
		return want == ""
	}
	return false
}

// compareValues orders two attribute values of one key: numbers and
// booleans by value (so mtu 9000 sorts after 1500), strings bytewise,
// null first.
func compareValues(a, b any) int {
	switch x := a.(type) {
	case int:
		if y, ok := b.(int); ok {
			return cmp.Compare(x, y)
		}
	case bool:
		if y, ok := b.(bool); ok {
			return cmp.Compare(boolInt(x), boolInt(y))
		}
	case string:
		if y, ok := b.(string); ok {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(boolInt(a != nil), boolInt(b != nil))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// listQuery is a list request's sorting and paging.
type listQuery struct {
	keys  []string
	desc  []bool
	limit int
}

// parseListQuery checks sort_key, sort_dir and limit as Neutron does:
// a sort key must be a scalar attribute of the resource (known from the
// items; an empty list has nothing to misorder), a direction asc or desc,
// the limit a non-negative integer (0: none). Sort keys without a
// direction sort ascending.
func parseListQuery(q url.Values, items []map[string]any) (listQuery, error) {
	var lq listQuery
	var errs []error
	lq.keys = q["sort_key"]
	dirs := q["sort_dir"]
	if len(dirs) > len(lq.keys) {
		errs = append(errs, &Error{Status: 400, Type: "HTTPBadRequest", Err: ErrInvalid, Message: "The number of sort_keys and sort_dirs must be same"})
	}
	for i, key := range lq.keys {
		if len(items) > 0 && !slices.ContainsFunc(items, func(it map[string]any) bool { v, ok := it[key]; return ok && scalar(v) }) {
			errs = append(errs, badInput("sort_key", fmt.Sprintf("'%s' is not a sortable attribute", key)))
		}
		dir := "asc"
		if i < len(dirs) {
			dir = dirs[i]
		}
		switch dir {
		case "asc", "desc":
		default:
			errs = append(errs, badInput("sort_dir", fmt.Sprintf("'%s' is not in ['asc', 'desc']", dir)))
		}
		lq.desc = append(lq.desc, dir == "desc")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if errors.Is(err, strconv.ErrRange) && n > 0 {
			n, err = 0, nil // past any int: more than there can be, so none
		}
		if err != nil || n < 0 {
			errs = append(errs, badInput("limit", fmt.Sprintf("'%s' is not a non-negative integer", s)))
		}
		lq.limit = n
	}
	return lq, joined(errs)
}

// matches applies the attribute filters of q to an item: every key must
// hold, several values of one key match any. Keys that are not attributes
// of the item (or not scalar, but for the list filters above) are not
// filters here.
func matches(q url.Values, it map[string]any) bool {
	for key, want := range q {
		if listParams[key] {
			continue
		}
		if !matchesList(key, want, it) {
			return false
		}
		got, present := it[key]
		if !present || !scalar(got) {
			continue
		}
		if !slices.ContainsFunc(want, func(s string) bool { return matchesValue(got, s) }) {
			return false
		}
	}
	return true
}

// writeList answers a list as Neutron does: items sorted (sort_key/
// sort_dir, then id), filtered by any scalar attribute (?name=x&shared=
// true), paged (limit, marker; a <collection>_links next link while more
// remain), projected (fields). The marker is looked up before filtering,
// as Neutron fetches it by ID: a page's last item that no longer matches
// still marks where the next page starts. kind names the resource in a
// missing marker's NotFound.
func (h *Neutron) writeList(w http.ResponseWriter, r *http.Request, collection, kind string, items []map[string]any) {
	q := r.URL.Query()
	lq, err := parseListQuery(q, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b map[string]any) int {
		for k, key := range lq.keys {
			if c := compareValues(a[key], b[key]); c != 0 {
				if lq.desc[k] {
					return -c
				}
				return c
			}
		}
		return cmp.Compare(idOf(a), idOf(b))
	})
	if marker := q.Get("marker"); marker != "" {
		i := slices.IndexFunc(sorted, func(it map[string]any) bool { return idOf(it) == marker })
		if i < 0 {
			h.fail(w, r, notFound(kind, marker))
			return
		}
		sorted = sorted[i+1:]
	}
	filtered := slices.DeleteFunc(sorted, func(it map[string]any) bool { return !matches(q, it) })
	body := map[string]any{}
	if lq.limit > 0 && len(filtered) > lq.limit {
		filtered = filtered[:lq.limit]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("marker", idOf(filtered[len(filtered)-1]))
		body[collection+"_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
	}
	out := make([]map[string]any, 0, len(filtered))
	for _, it := range filtered {
		out = append(out, pick(q["fields"], it))
	}
	body[collection] = out
	osapi.WriteJSON(w, http.StatusOK, body)
}

// pick keeps only the fields asked for (all when none are).
func pick(fields []string, it map[string]any) map[string]any {
	if len(fields) == 0 {
		return it
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := it[f]; ok {
			out[f] = v
		}
	}
	return out
}

// idOf is an item's identity for paging: its id, or its name for
// resources without one (availability zones).
func idOf(it map[string]any) string {
	if id, ok := it["id"].(string); ok {
		return id
	}
	name, _ := it["name"].(string)
	return name
}
