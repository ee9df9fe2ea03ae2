package image

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// listed are the query parameters that are not property filters.
var listed = map[string]bool{
	"limit": true, "marker": true, "sort": true, "sort_key": true, "sort_dir": true, "name": true, "status": true,
	"visibility": true, "owner": true, "tag": true, "disk_format": true, "container_format": true, "id": true,
	"size_min": true, "size_max": true, "protected": true, "os_hidden": true, "member_status": true,
	"created_at": true, "updated_at": true,
}

// list answers GET /v2/images: Glance's filters (name, status, id,
// disk_format and container_format with "in:a,b"; visibility, owner, tag
// repeated, size_min/size_max, protected, os_hidden, and any other
// parameter as a custom property filter), sort=key:dir,... or
// sort_key/sort_dir, and limit/marker paging with a "next" link.
func (g *Glance) list(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		g.fail(w, r, err)
		return
	}
	page, err := g.Images.List(r.Context(), caller(r), q)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	osapi.FlagPartial(w, r, g.Log, "images", page.Partial, nil)
	out := make([]map[string]any, 0, len(page.Images))
	for _, img := range page.Images {
		out = append(out, view(img))
	}
	first := r.URL.Query()
	first.Del("marker")
	body := map[string]any{"images": out, "first": withQuery("/v2/images", first), "schema": "/v2/schemas/images"}
	if page.More {
		next := r.URL.Query()
		next.Set("marker", page.Images[len(page.Images)-1].ID)
		next.Set("limit", strconv.Itoa(q.Limit))
		body["next"] = withQuery("/v2/images", next)
	}
	osapi.WriteJSON(w, http.StatusOK, body)
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// parseQuery reads a list's query string, naming every bad parameter.
func parseQuery(v url.Values) (Query, error) {
	q := Query{Limit: defaultLimit, Marker: v.Get("marker"), Visibility: v.Get("visibility"), MemberStatus: v.Get("member_status"), Owner: v.Get("owner"), Tags: v["tag"]}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if errors.Is(err, strconv.ErrRange) && n > 0 {
			err = nil // past any int: Glance caps it like any other too large limit
		}
		if err != nil || n < 0 {
			bad("limit must be a non-negative integer")
		}
		q.Limit = min(n, maxLimit)
		if n == 0 {
			q.Limit = maxLimit // Glance's cap; the service reads 0 as none
		}
	}
	inList := func(k string) []string {
		s := v.Get(k)
		if s == "" {
			return nil
		}
		if rest, ok := strings.CutPrefix(s, "in:"); ok {
			return strings.Split(rest, ",")
		}
		return []string{s}
	}
	q.IDs, q.Names, q.Statuses = inList("id"), inList("name"), inList("status")
	q.DiskFormats, q.ContainerFormats = inList("disk_format"), inList("container_format")
	for _, k := range []string{"size_min", "size_max"} {
		if s := v.Get(k); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				bad("%s must be a non-negative integer", k)
				continue
			}
			if k == "size_min" {
				q.SizeMin = &n
			} else {
				q.SizeMax = &n
			}
		}
	}
	for _, k := range []string{"protected", "os_hidden"} {
		if s := v.Get(k); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				bad("%s must be true or false", k)
				continue
			}
			if k == "protected" {
				q.Protected = &b
			} else {
				q.Hidden = b
			}
		}
	}
	for _, k := range []string{"created_at", "updated_at"} {
		for _, s := range v[k] {
			op, at, ok := strings.Cut(s, ":")
			if !ok || !slices.Contains([]string{"eq", "neq", "gt", "gte", "lt", "lte"}, op) {
				op, at = "eq", s
			}
			t, err := time.Parse(time.RFC3339, at)
			if err != nil {
				bad("%s: '%s' is not [op:]timestamp with an RFC 3339 timestamp", k, s)
				continue
			}
			f := TimeFilter{Op: op, At: t}
			if k == "created_at" {
				q.CreatedAt = append(q.CreatedAt, f)
			} else {
				q.UpdatedAt = append(q.UpdatedAt, f)
			}
		}
	}
	for k, vals := range v {
		if !listed[k] && len(vals) > 0 {
			if q.Properties == nil {
				q.Properties = map[string]string{}
			}
			q.Properties[k] = vals[0]
		}
	}
	switch sort, keys, dirs := v.Get("sort"), v["sort_key"], v["sort_dir"]; {
	case sort != "" && (len(keys) > 0 || len(dirs) > 0):
		bad("the 'sort' parameter cannot be combined with sort_key or sort_dir")
	case sort != "":
		for _, part := range strings.Split(sort, ",") {
			key, dir, _ := strings.Cut(strings.TrimSpace(part), ":")
			desc, ok := parseDir(dir, "desc")
			if !ok {
				bad("invalid sort direction '%s': want asc or desc", dir)
			}
			q.Sort = append(q.Sort, SortKey{Key: key, Desc: desc})
		}
	case len(keys) > 0 || len(dirs) > 0:
		if len(dirs) > 1 && len(dirs) != len(keys) {
			bad("give one sort_dir, or one per sort_key")
		}
		if len(keys) == 0 {
			keys = []string{"created_at"}
		}
		for i, key := range keys {
			dir := ""
			if len(dirs) == 1 {
				dir = dirs[0]
			} else if i < len(dirs) {
				dir = dirs[i]
			}
			desc, ok := parseDir(dir, "desc")
			if !ok {
				bad("invalid sort direction '%s': want asc or desc", dir)
			}
			q.Sort = append(q.Sort, SortKey{Key: key, Desc: desc})
		}
	}
	if len(problems) > 0 {
		return q, fmt.Errorf("%s: %w", strings.Join(problems, "; "), ErrInvalid)
	}
	return q, nil
}

// parseDir reads a sort direction; empty is def (Glance's default is desc).
func parseDir(dir, def string) (desc, ok bool) {
	if dir == "" {
		dir = def
	}
	switch dir {
	case "asc":
		return false, true
	case "desc":
		return true, true
	}
	return false, false
}
