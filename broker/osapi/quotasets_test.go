package osapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestQuotaSets: a project reads its own quota set and a cloud admin any;
// only a cloud admin changes quotas, and only where they are configurable.
// Refusals name the API's policy rule and the action, as OpenStack's do.
func TestQuotaSets(t *testing.T) {
	q := QuotaSets{Rule: "volume_extension:quotas"}
	tests := []struct {
		name     string
		method   string
		read     bool // MayRead, else MayChange
		target   string
		admin    bool
		config   bool
		wantOK   bool
		wantCode int
		wantMsg  string
	}{
		{name: "own quota set", method: http.MethodGet, read: true, target: "p1", wantOK: true},
		{name: "another project's", method: http.MethodGet, read: true, target: "p2", wantCode: 403,
			wantMsg: "Policy doesn't allow volume_extension:quotas:show to be performed."},
		{name: "another project's as admin", method: http.MethodGet, read: true, target: "p2", admin: true, wantOK: true},
		{name: "update as member", method: http.MethodPut, config: true, wantCode: 403,
			wantMsg: "Policy doesn't allow volume_extension:quotas:update to be performed."},
		{name: "reset as member", method: http.MethodDelete, config: true, wantCode: 403,
			wantMsg: "Policy doesn't allow volume_extension:quotas:delete to be performed."},
		{name: "update as admin, not configurable", method: http.MethodPut, admin: true, wantCode: 501,
			wantMsg: "Quotas are not configurable on this cloud."},
		{name: "update as admin", method: http.MethodPut, admin: true, config: true, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(tc.method, "/os-quota-sets/"+tc.target, nil)
			var ok bool
			if tc.read {
				ok = q.MayRead(w, r, tc.target, "p1", tc.admin)
			} else {
				ok = q.MayChange(w, r, tc.admin, tc.config)
			}
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if ok {
				if w.Body.Len() != 0 {
					t.Fatalf("answered %d %s though the request may go on", w.Code, w.Body)
				}
				return
			}
			var body map[string]struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body) != 1 {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			for _, f := range body {
				if w.Code != tc.wantCode || f.Code != tc.wantCode || f.Message != tc.wantMsg {
					t.Fatalf("answered %d %+v, want %d %q", w.Code, f, tc.wantCode, tc.wantMsg)
				}
			}
		})
	}
}
