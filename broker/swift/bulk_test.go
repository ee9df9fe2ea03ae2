package swift_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestBulkDelete(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	bob := e.login(t, "bob", "beta", "member")
	a := alice.account
	for _, p := range []string{"/c1", "/c2", "/keep"} {
		e.must(t, alice, http.StatusCreated, "PUT", a+p, nil, "")
	}
	for _, p := range []string{"/c1/a", "/c1/b c", "/c2/x", "/keep/y"} {
		e.must(t, alice, http.StatusCreated, "PUT", a+strings.ReplaceAll(p, " ", "%20"), nil, "data")
	}
	body := "/c1/a\n/c1/b%20c\n/c1\n/c2\n/nope/z\n\n"
	resp, got := e.must(t, alice, http.StatusOK, "POST", a+"?bulk-delete", hdr("Accept", "application/json", "Content-Type", "text/plain"), body)
	var res struct {
		Deleted  int        `json:"Number Deleted"`
		NotFound int        `json:"Number Not Found"`
		Status   string     `json:"Response Status"`
		Errors   [][]string `json:"Errors"`
	}
	if err := json.Unmarshal([]byte(got), &res); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("bulk delete answer %q: %v", got, err)
	}
	if res.Deleted != 3 || res.NotFound != 1 || res.Status != "400 Bad Request" || len(res.Errors) != 1 ||
		res.Errors[0][0] != "/c2" || res.Errors[0][1] != "409 Conflict" {
		t.Fatalf("bulk delete = %+v", res)
	}
	_, got = e.must(t, alice, http.StatusOK, "GET", a, nil, "")
	if got != "c2\nkeep\n" {
		t.Fatalf("account after bulk delete = %q", got)
	}
	// Another project's bulk delete deletes nothing of alpha's.
	_, got = e.must(t, bob, http.StatusOK, "POST", a+"?bulk-delete", nil, "/keep/y\n/keep\n")
	if !strings.Contains(got, "Number Deleted: 0\n") || !strings.Contains(got, "/keep/y, 403 Forbidden\n") {
		t.Fatalf("beta's bulk delete of alpha's = %q", got)
	}
	_, got = e.must(t, bob, http.StatusOK, "POST", bob.account+"?bulk-delete", nil, "/keep/y\n")
	if !strings.Contains(got, "Number Not Found: 1\n") {
		t.Fatalf("beta's bulk delete in its own account = %q", got)
	}
	e.must(t, alice, http.StatusOK, "GET", a+"/keep/y", nil, "")
}
