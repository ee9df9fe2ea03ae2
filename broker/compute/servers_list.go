package compute

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
)

// maxListLimit is Nova's max_limit: a page never holds more.
const maxListLimit = 1000

// serverField is a server attribute as GET /servers filters and sorts on
// it: its value as Nova shows it, and whether a filter on it is a regular
// expression (Nova's LIKE filters) or an exact match.
type serverField struct {
	value func(Server) string
	regex bool
}

func timeField(t func(Server) time.Time) func(Server) string {
	return func(s Server) string { return t(s).UTC().Format("2006-01-02T15:04:05.000000") }
}

// serverFields are the attributes Nova's list filters and sort keys name.
// Those the broker has no value for (kernel_id and kin) are "" on every
// server, as on a Nova server without them.
var serverFields = map[string]serverField{
	"display_name": {func(s Server) string { return s.Name }, true},
	"display_description": {func(s Server) string {
		if s.Description == nil {
			return ""
		}
		return *s.Description
	}, true},
	"uuid":              {func(s Server) string { return s.ID }, false},
	"project_id":        {func(s Server) string { return s.Project }, false},
	"user_id":           {func(s Server) string { return s.UserID }, false},
	"image_ref":         {func(s Server) string { return s.ImageID }, false},
	"instance_type_id":  {func(s Server) string { return s.FlavorID }, false},
	"host":              {func(s Server) string { return s.Zone }, false},
	"node":              {func(s Server) string { return s.Host }, true},
	"hostname":          {func(s Server) string { return s.Hostname }, true},
	"key_name":          {func(s Server) string { return s.KeyName }, true},
	"availability_zone": {func(s Server) string { return s.Zone }, true},
	"reservation_id":    {func(s Server) string { return s.ReservationID }, true},
	"launch_index":      {func(s Server) string { return strconv.Itoa(s.LaunchIndex) }, true},
	"access_ip_v4":      {func(s Server) string { return s.AccessIPv4 }, true},
	"access_ip_v6":      {func(s Server) string { return s.AccessIPv6 }, true},
	"vm_state":          {func(s Server) string { _, vm, _ := states(s.Status); return vm }, false},
	"task_state": {func(s Server) string {
		_, _, task := serverStates(s)
		if task == nil {
			return ""
		}
		return fmt.Sprint(task)
	}, false},
	"power_state": {func(s Server) string { p, _, _ := states(s.Status); return fmt.Sprintf("%03d", p) }, true},
	"progress": {func(s Server) string {
		if s.Status == "ACTIVE" {
			return "100"
		}
		return "000"
	}, true},
	"locked":           {func(s Server) string { return strconv.FormatBool(s.Locked) }, false},
	"created_at":       {timeField(func(s Server) time.Time { return s.CreatedAt }), true},
	"updated_at":       {timeField(func(s Server) time.Time { return s.UpdatedAt }), true},
	"launched_at":      {timeField(func(s Server) time.Time { return s.CreatedAt }), true},
	"terminated_at":    {func(Server) string { return "" }, true},
	"config_drive":     {func(Server) string { return "" }, true},
	"auto_disk_config": {func(Server) string { return "false" }, true},
	"kernel_id":        {func(Server) string { return "" }, true},
	"ramdisk_id":       {func(Server) string { return "" }, true},
	"root_device_name": {func(Server) string { return "" }, true},
	"locked_by":        {func(s Server) string { return s.LockedBy }, true},
}

// filterAliases are the names Nova takes for the same filter.
var filterAliases = map[string]string{"name": "display_name", "description": "display_description", "image": "image_ref",
	"flavor": "instance_type_id", "tenant_id": "project_id"}

// listParams are the query parameters GET /servers takes beside the
// attribute filters; joinedParams are refused as Nova refuses them.
var (
	listParams   = []string{"limit", "marker", "sort_key", "sort_dir", "all_tenants", "status", "changes-since", "ip", "ip6", "deleted", "soft_deleted"}
	joinedParams = []string{"block_device_mapping", "services", "metadata", "system_metadata", "info_cache", "security_groups", "pci_devices"}
	// userFilters are those a project member may use (Nova's
	// _get_server_search_options); admins may use every one.
	userFilters = []string{"reservation_id", "name", "status", "image", "flavor", "ip", "changes-since", "all_tenants"}
)

// userFiltersAt adds the filters later microversions gave everyone.
func userFiltersAt(r *http.Request) []string {
	opts := slices.Clone(userFilters)
	if at(r, "2.5") {
		opts = append(opts, "ip6")
	}
	if at(r, "2.26") {
		opts = append(opts, "tags", "tags-any", "not-tags", "not-tags-any")
	}
	if at(r, "2.66") {
		opts = append(opts, "changes-before")
	}
	if at(r, "2.73") {
		opts = append(opts, "locked")
	}
	if at(r, "2.83") {
		opts = append(opts, "availability_zone", "config_drive", "key_name", "created_at", "launched_at", "terminated_at",
			"power_state", "task_state", "vm_state", "progress", "user_id")
	}
	if at(r, "2.90") {
		opts = append(opts, "hostname")
	}
	return opts
}

// known reports whether Nova's list schema at the request's version has
// the parameter.
func knownListParam(r *http.Request, k string) bool {
	if _, ok := serverFields[k]; ok && k != "updated_at" && k != "instance_type_id" {
		return k != "locked" || at(r, "2.73")
	}
	if _, ok := filterAliases[k]; ok || slices.Contains(listParams, k) || slices.Contains(joinedParams, k) {
		return true
	}
	switch k {
	case "tags", "tags-any", "not-tags", "not-tags-any":
		return at(r, "2.26")
	case "changes-before":
		return at(r, "2.66")
	}
	return false
}

// novaStatuses are the statuses Nova's status filter knows (2.38 refuses
// others).
var novaStatuses = []string{"ACTIVE", "BUILD", "DELETED", "ERROR", "HARD_REBOOT", "MIGRATING", "PASSWORD", "PAUSED", "REBOOT",
	"REBUILD", "RESCUE", "RESIZE", "REVERT_RESIZE", "SHELVED", "SHELVED_OFFLOADED", "SHUTOFF", "SOFT_DELETED", "SUSPENDED", "VERIFY_RESIZE"}

// listQuery turns GET /servers' parameters into a Query, as Nova reads
// them at the request's microversion: a member's filters beyond those the
// version gives members are ignored (Nova strips them), an unknown
// parameter is ignored before 2.75 and refused from it.
func listQuery(r *http.Request) (Query, bool, error) {
	v := r.URL.Query()
	admin := isAdmin(r)
	allowed := userFiltersAt(r)
	q := Query{Limit: maxListLimit}
	var conds []func(Server) bool
	empty := false // a filter no server can pass (deleted=true)
	filtered := false
	for _, k := range slices.Sorted(mapKeys(v)) {
		vals := v[k]
		switch {
		case strings.HasPrefix(k, "_") || slices.Contains(joinedParams, k):
			return q, false, invalid(k, "Invalid filter field: %s.", k)
		case !knownListParam(r, k):
			if at(r, "2.75") {
				return q, false, invalid(k, "Invalid input for query parameters %s. Additional properties are not allowed ('%s' was unexpected)", k, k)
			}
			continue
		}
		if k != "limit" && k != "marker" && k != "sort_key" && k != "sort_dir" && !admin && !slices.Contains(allowed, k) {
			continue // as Nova's remove_invalid_options
		}
		if k != "all_tenants" {
			filtered = true
		}
		val := vals[len(vals)-1]
		switch k {
		case "limit":
			l, err := strconv.Atoi(val)
			if err != nil || l < 0 {
				return q, false, invalid("limit", "Invalid input for query parameters limit: must be a non-negative integer")
			}
			if l > 0 && l < maxListLimit {
				q.Limit = l
			}
		case "marker":
			q.Marker = val
		case "sort_key", "sort_dir":
			// read below, together
		case "all_tenants":
			all, ok := osapi.ParseBool(val)
			if !ok {
				return q, false, invalid("all_tenants", "Invalid input for query parameters all_tenants: %q is not a boolean", val)
			}
			q.AllProjects = all
		case "status":
			for _, st := range vals {
				if !slices.Contains(novaStatuses, strings.ToUpper(st)) {
					if at(r, "2.38") {
						return q, false, invalid("status", "Invalid status value")
					}
					empty = true
				}
			}
			conds = append(conds, func(s Server) bool {
				return slices.ContainsFunc(vals, func(st string) bool { return strings.EqualFold(st, string(s.Status)) })
			})
		case "changes-since", "changes-before":
			t, err := parseNovaTime(val)
			if err != nil {
				return q, false, invalid(k, "Invalid input for query parameters %s: %v", k, err)
			}
			if k == "changes-since" {
				q.ChangesSince = t
			} else {
				q.ChangesBefore = t
			}
		case "ip", "ip6":
			q.IP = val
			if k == "ip6" {
				q.IP = "" // ip6 matches v6 addresses only
				re, _ := regexp.Compile(val)
				conds = append(conds, func(s Server) bool {
					for _, a := range s.Addresses {
						if a.Version == 6 && pattern(val, re, a.Addr) {
							return true
						}
					}
					return false
				})
			}
		case "tags":
			q.Tags = strings.Split(val, ",")
		case "tags-any":
			q.TagsAny = strings.Split(val, ",")
		case "not-tags":
			q.NotTags = strings.Split(val, ",")
		case "not-tags-any":
			q.NotTagsAny = strings.Split(val, ",")
		case "deleted", "soft_deleted":
			if on, _ := jsonBool([]byte(val)); on {
				empty = true // the broker forgets deleted servers at once
			}
		case "locked":
			on, _ := jsonBool([]byte(val))
			conds = append(conds, func(s Server) bool { return s.Locked == on })
		default:
			name := k
			if a, ok := filterAliases[k]; ok {
				name = a
			}
			f := serverFields[name]
			if name == "image_ref" || name == "instance_type_id" {
				val = lastSegment(val)
			}
			if f.regex {
				re, _ := regexp.Compile(val)
				conds = append(conds, func(s Server) bool { return pattern(val, re, f.value(s)) })
			} else {
				conds = append(conds, func(s Server) bool { return f.value(s) == val })
			}
		}
	}
	sorter, err := sortOrder(r, v["sort_key"], v["sort_dir"], admin)
	if err != nil {
		return q, false, err
	}
	q.Sort = sorter
	if len(conds) > 0 || empty {
		q.Match = func(s Server) bool {
			if empty {
				return false
			}
			for _, c := range conds {
				if !c(s) {
					return false
				}
			}
			return true
		}
	}
	// 2.69: the servers of a peer that did not answer are listed as
	// UNKNOWN, unless the list is filtered, sorted or paged (the broker
	// cannot tell whether they match), as Nova does for a down cell.
	q.Unreachable = at(r, "2.69") && !filtered
	return q, true, nil
}

// sortOrder reads sort_key and sort_dir pairs (default: created_at, desc).
// Before 2.75 the keys Nova ignores are ignored; non-admins may not sort
// by host or node.
func sortOrder(r *http.Request, keys, dirs []string, admin bool) (func(a, b Server) int, error) {
	type key struct {
		field serverField
		desc  bool
	}
	var ks []key
	for i, k := range keys {
		if slices.Contains(ignoredSortKeys, k) && (k != "locked" || !at(r, "2.73")) {
			if at(r, "2.75") {
				return nil, invalid("sort_key", "Invalid input for query parameters sort_key. Value: %s. It is not a sort key", k)
			}
			continue // Nova ignored these before 2.75
		}
		f, ok := serverFields[k]
		if !ok {
			return nil, invalid("sort_key", "Invalid input for query parameters sort_key. Value: %s. It is not a sort key", k)
		}
		if !admin && (k == "host" || k == "node") {
			continue
		}
		desc := true
		if i < len(dirs) {
			switch dirs[i] {
			case "asc":
				desc = false
			case "desc":
			default:
				return nil, invalid("sort_dir", "Invalid input for query parameters sort_dir. Value: %s. It must be asc or desc", dirs[i])
			}
		}
		ks = append(ks, key{f, desc})
	}
	if len(ks) == 0 {
		return nil, nil
	}
	return func(a, b Server) int {
		for _, k := range ks {
			c := strings.Compare(k.field.value(a), k.field.value(b))
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	}, nil
}

// ignoredSortKeys are the keys Nova ignored before 2.75 (those it has no
// serverFields entry for here).
var ignoredSortKeys = []string{"architecture", "cell_name", "cleaned", "default_ephemeral_device", "default_swap_device", "deleted",
	"deleted_at", "disable_terminate", "ephemeral_gb", "ephemeral_key_uuid", "id", "key_data", "launched_on", "locked", "memory_mb",
	"os_type", "reservation_id", "root_gb", "shutdown_terminate", "user_data", "vcpus", "vm_mode"}

func mapKeys(v url.Values) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range v {
			if !yield(k) {
				return
			}
		}
	}
}

func (n *Nova) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, ok, err := listQuery(r)
		if !ok {
			n.writeError(w, r, err)
			return
		}
		page, err := n.Servers.List(r.Context(), caller(r), q)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		osapi.FlagPartial(w, r, n.Log, "servers", page.Failed, nil)
		kind := viewIndex
		if detail {
			kind = viewDetail
		}
		out := make([]map[string]any, 0, len(page.Servers))
		for _, s := range page.Servers {
			out = append(out, serverView(r, s, kind))
		}
		body := map[string]any{"servers": out}
		if page.More && len(page.Servers) > 0 {
			next := r.URL.Query()
			next.Set("marker", page.Servers[len(page.Servers)-1].ID)
			next.Set("limit", strconv.Itoa(q.Limit))
			body["servers_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
		}
		osapi.WriteJSON(w, http.StatusOK, body)
	}
}

// parseNovaTime reads an ISO 8601 time as Nova's changes-since takes it.
func parseNovaTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
}
