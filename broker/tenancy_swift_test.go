package broker_test

import (
	"net/http"
	"strings"
	"testing"
)

// checkSwift: B gets one 403 for every method on every path under A's
// Swift account (by A's container name and by the peer-side name the
// broker gave it), the same as for paths that name nothing; under B's
// own account the peer-side name is not found, as is A's container's
// name; A's container and object are untouched.
func (te *tenancyEnv) checkSwift(t *testing.T) {
	aAcc, bAcc := "/swift/v1/AUTH_"+te.aProject, "/swift/v1/AUTH_"+te.bProject
	for _, step := range []struct{ method, path, body string }{
		{"PUT", aAcc + "/a-bucket", ""}, {"PUT", aAcc + "/a-bucket/a-object", "A's bytes"}, {"PUT", bAcc + "/b-bucket", ""},
	} {
		if status, body := te.send(t, step.method, step.path, te.aToken, step.body); step.path[:len(aAcc)] == aAcc && status != http.StatusCreated {
			t.Fatalf("A's %s %s = %d %s", step.method, step.path, status, body)
		}
	}
	if status, body := te.send(t, "PUT", bAcc+"/b-bucket", te.bToken, ""); status != http.StatusCreated {
		t.Fatalf("B's container = %d %s", status, body)
	}
	_, peerName, err := te.objs.PeerOf(te.Ctx, te.aProject, "a-bucket")
	if err != nil {
		t.Fatal(err)
	}
	view := func() string {
		_, obj := te.send(t, "GET", aAcc+"/a-bucket/a-object", te.aToken, "")
		_, list := te.send(t, "GET", aAcc+"/a-bucket?format=json", te.aToken, "")
		_, acc := te.send(t, "GET", aAcc, te.aToken, "")
		return obj + "|" + list + "|" + acc
	}
	before := view()
	if !strings.HasPrefix(before, "A's bytes|") {
		t.Fatalf("A's view = %q", before)
	}

	forms := map[string]string{"name": "a-bucket", "peer's name": peerName}
	for form, c := range forms {
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "COPY"} {
			for _, tail := range []string{"", "/a-object"} {
				if tail == "" && method == "COPY" {
					continue // no COPY on containers, for anyone
				}
				t.Run(form+" "+method+tail, func(t *testing.T) {
					status, body := te.send(t, method, aAcc+"/"+c+tail, te.bToken, "")
					aStatus, aBody := te.send(t, method, aAcc+"/"+lookalike(c)+tail, te.bToken, "")
					want := http.StatusForbidden
					if method == "COPY" {
						// Without a Destination (send sets no headers) the
						// request is refused before it is looked at;
						// broker/swift's TestCrossTenant sends one.
						want = http.StatusPreconditionFailed
					}
					if status != want || status != aStatus || body != aBody {
						t.Fatalf("%s %s as B = %d %q; for none %d %q; want one %d", method, c+tail, status, body, aStatus, aBody, want)
					}
					if method != "GET" && method != "HEAD" {
						return
					}
					// Under B's own account A's names are nothing.
					if status, body := te.send(t, method, bAcc+"/"+c+tail, te.bToken, ""); status != http.StatusNotFound {
						t.Fatalf("%s %s under B's account = %d %q; want 404", method, c+tail, status, body)
					}
				})
			}
		}
	}
	for _, method := range []string{"GET", "HEAD", "POST"} {
		if status, _ := te.send(t, method, aAcc, te.bToken, ""); status != http.StatusForbidden {
			t.Errorf("%s A's account as B = %d; want 403", method, status)
		}
	}
	if after := view(); after != before {
		t.Fatalf("A's Swift data changed under B's requests:\nbefore %s\nafter  %s", before, after)
	}
}
