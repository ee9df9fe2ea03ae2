package osapi

import (
	"net/http"
)

// QuotaSets is the access rule the os-quota-sets of Nova and Cinder share:
// a project reads its own quota set and a cloud admin any; only a cloud
// admin changes them, where quotas are configurable. Refusals are in
// OpenStack's words: "Policy doesn't allow <Rule>:<action> to be
// performed." (403), "Quotas are not configurable on this cloud." (501).
type QuotaSets struct {
	// Rule is the API's policy rule prefix ("os_compute_api:os-quota-sets"
	// for Nova, "volume_extension:quotas" for Cinder).
	Rule string
}

// MayRead reports whether a caller of project (a cloud admin with admin)
// may read target's quota set, answering 403 when not.
func (q QuotaSets) MayRead(w http.ResponseWriter, r *http.Request, target, project string, admin bool) bool {
	if target == project || admin {
		return true
	}
	q.refuse(w, r, "show")
	return false
}

// MayChange reports whether a quota change (PUT updates, DELETE resets)
// may go on: the caller is a cloud admin (admin) and quotas can be
// changed (configurable). Otherwise it answers 403 or 501.
func (q QuotaSets) MayChange(w http.ResponseWriter, r *http.Request, admin, configurable bool) bool {
	if !admin {
		q.refuse(w, r, map[string]string{http.MethodPut: "update", http.MethodDelete: "delete"}[r.Method])
		return false
	}
	if !configurable {
		Fault(w, r, http.StatusNotImplemented, "Quotas are not configurable on this cloud.")
		return false
	}
	return true
}

func (q QuotaSets) refuse(w http.ResponseWriter, r *http.Request, action string) {
	Fault(w, r, http.StatusForbidden, "Policy doesn't allow "+q.Rule+":"+action+" to be performed.")
}
