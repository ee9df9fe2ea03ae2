package swift

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloudmux/cloudmux/broker/object"
)

// Bulk delete, as Swift's bulk middleware: POST (or DELETE) to the
// account with ?bulk-delete and a body of newline-separated, URL-quoted
// paths "/container/object" or "/container"; each is deleted in order
// (objects before their container), through the service with the
// caller's identity. The answer is 200 with a summary in the Accept
// header's format.
const (
	maxBulkDeletes = 10000
	maxBulkFailed  = 1000
	// maxBulkLine bounds one path line: a container and an object name,
	// quoted.
	maxBulkLine = 3 * (256 + 1024 + 2)
)

// bulkResult is the summary Swift's bulk middleware answers.
type bulkResult struct {
	Deleted  int        `json:"Number Deleted"`
	NotFound int        `json:"Number Not Found"`
	Body     string     `json:"Response Body"`
	Status   string     `json:"Response Status"`
	Errors   [][]string `json:"Errors"`
}

func (a *API) bulkDelete(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	res := bulkResult{Errors: [][]string{}}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 0, 4096), maxBulkLine)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if n++; n > maxBulkDeletes {
			res.Status, res.Body = "413 Request Entity Too Large", fmt.Sprintf("Maximum Bulk Deletes: %d per request", maxBulkDeletes)
			break
		}
		p, err := url.PathUnescape(line)
		if err != nil {
			p = line
		}
		container, obj, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if container == "" {
			res.Errors = append(res.Errors, []string{line, "400 Bad Request"})
			continue
		}
		if obj == "" {
			err = a.Objects.DeleteContainer(r.Context(), c, t.account, container)
		} else {
			err = a.Objects.DeleteObject(r.Context(), c, t.account, container, obj)
		}
		switch {
		case err == nil:
			res.Deleted++
		case errors.Is(err, object.ErrNotFound):
			res.NotFound++
		default:
			res.Errors = append(res.Errors, []string{line, bulkStatus(err)})
		}
		if len(res.Errors) >= maxBulkFailed {
			break
		}
	}
	if err := sc.Err(); err != nil && res.Status == "" {
		res.Status, res.Body = "400 Bad Request", "Invalid bulk delete."
	}
	switch {
	case res.Status != "":
	case len(res.Errors) > 0:
		res.Status = "400 Bad Request"
	default:
		res.Status = "200 OK"
	}
	writeBulk(w, r, res)
}

// bulkStatus is the status one failed delete gets in the summary.
func bulkStatus(err error) string {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, object.ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, object.ErrUnauthorized):
		code = http.StatusUnauthorized
	case errors.Is(err, object.ErrNotEmpty):
		code = http.StatusConflict
	case errors.Is(err, object.ErrUnavailable):
		code = http.StatusServiceUnavailable
	}
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

func writeBulk(w http.ResponseWriter, r *http.Request, res bulkResult) {
	var body string
	ctype := "text/plain; charset=utf-8"
	switch format(r) {
	case "json":
		raw, _ := json.Marshal(res)
		body, ctype = string(raw), "application/json; charset=utf-8"
	case "xml":
		var b strings.Builder
		fmt.Fprintf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<delete><number_deleted>%d</number_deleted><number_not_found>%d</number_not_found>", res.Deleted, res.NotFound)
		fmt.Fprintf(&b, "<response_body>%s</response_body><response_status>%s</response_status><errors>", xmlAttr(res.Body), res.Status)
		for _, e := range res.Errors {
			fmt.Fprintf(&b, "<object><name>%s</name><status>%s</status></object>", xmlAttr(e[0]), e[1])
		}
		b.WriteString("</errors></delete>\n")
		body, ctype = b.String(), "application/xml; charset=utf-8"
	default:
		var b strings.Builder
		fmt.Fprintf(&b, "Number Deleted: %d\nNumber Not Found: %d\nResponse Body: %s\nResponse Status: %s\nErrors:\n", res.Deleted, res.NotFound, res.Body, res.Status)
		for _, e := range res.Errors {
			fmt.Fprintf(&b, "%s, %s\n", e[0], e[1])
		}
		body = b.String()
	}
	writeBody(w, r, http.StatusOK, ctype, body)
}
