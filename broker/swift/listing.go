package swift

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/peers"
)

// format is a listing's body format, from ?format= or the Accept header.
func format(r *http.Request) string {
	switch f := strings.ToLower(r.URL.Query().Get("format")); f {
	case "json", "xml", "plain":
		return f
	}
	accept := r.Header.Get("Accept")
	switch {
	case strings.Contains(accept, "application/json"):
		return "json"
	case strings.Contains(accept, "application/xml"), strings.Contains(accept, "text/xml"):
		return "xml"
	}
	return "plain"
}

func contentType(f string) string {
	switch f {
	case "json":
		return "application/json; charset=utf-8"
	case "xml":
		return "application/xml; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}

// listOptions reads a listing's query as Swift does: limit a whole number
// up to 10,000, a one-byte delimiter, UTF-8 values without NUL; else 412
// with Swift's words. none is limit=0: Swift lists nothing.
func listOptions(r *http.Request) (opts object.ListOptions, none bool, msg string) {
	q := r.URL.Query()
	for _, k := range []string{"prefix", "delimiter", "marker", "end_marker", "path"} {
		if v := q.Get(k); !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return opts, false, "Invalid UTF8 or contains NULL"
		}
	}
	opts = object.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), Marker: q.Get("marker"), EndMarker: q.Get("end_marker")}
	if len(opts.Delimiter) > 1 {
		return opts, false, "Bad delimiter"
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return opts, false, "Value of limit must be a positive integer"
		}
		if n > peers.MaxListLimit {
			return opts, false, "Maximum limit is " + strconv.Itoa(peers.MaxListLimit)
		}
		// Swift's limit=0 lists nothing; the contract's 0 is a page.
		opts.Limit, none = n, n == 0
	}
	switch strings.ToLower(q.Get("reverse")) {
	case "true", "1", "yes", "on", "t", "y":
		opts.Reverse = true
	}
	return opts, none, ""
}

// writeListing answers a listing body: 204 for an empty plain one, as
// Swift does.
func writeListing(w http.ResponseWriter, r *http.Request, f string, body []byte, empty bool) {
	w.Header().Set("Content-Type", contentType(f))
	if empty && f == "plain" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func xmlText(b *bytes.Buffer, tag, v string) {
	b.WriteString("<" + tag + ">")
	_ = xml.EscapeText(b, []byte(v))
	b.WriteString("</" + tag + ">")
}

func xmlAttr(v string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(v))
	return strings.ReplaceAll(b.String(), `"`, "&#34;")
}

// row is one listing entry as every format renders it: a Subdir, or an
// element (tag) whose fields are shown in order.
type row struct {
	subdir, tag string
	fields      []field
}

type field struct {
	name string
	val  any // string or int64
}

// listBody renders rows in format f under the root element <root
// name="...">.
func listBody(f, root, name string, rows []row) []byte {
	var b bytes.Buffer
	switch f {
	case "json":
		out := make([]any, 0, len(rows))
		for _, r := range rows {
			if r.subdir != "" {
				out = append(out, map[string]string{"subdir": r.subdir})
				continue
			}
			m := make(map[string]any, len(r.fields))
			for _, fl := range r.fields {
				m[fl.name] = fl.val
			}
			out = append(out, m)
		}
		raw, _ := json.Marshal(out)
		return raw
	case "xml":
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		b.WriteString("<" + root + ` name="` + xmlAttr(name) + `">`)
		for _, r := range rows {
			if r.subdir != "" {
				b.WriteString(`<subdir name="` + xmlAttr(r.subdir) + `">`)
				xmlText(&b, "name", r.subdir)
				b.WriteString("</subdir>")
				continue
			}
			b.WriteString("<" + r.tag + ">")
			for _, fl := range r.fields {
				xmlText(&b, fl.name, fmt.Sprint(fl.val))
			}
			b.WriteString("</" + r.tag + ">")
		}
		b.WriteString("</" + root + ">\n")
	default:
		for _, r := range rows {
			if r.subdir != "" {
				b.WriteString(r.subdir + "\n")
				continue
			}
			b.WriteString(fmt.Sprint(r.fields[0].val) + "\n")
		}
	}
	return b.Bytes()
}

// accountBody renders an account listing.
func accountBody(f, account string, entries []object.ContainerEntry) []byte {
	rows := make([]row, len(entries))
	for i, e := range entries {
		rows[i] = row{subdir: e.Subdir, tag: "container", fields: []field{{"name", e.Name}, {"count", e.Count},
			{"bytes", e.Bytes}, {"last_modified", listTime(e.LastModified)}}}
	}
	return listBody(f, "account", AccountPrefix+account, rows)
}

// containerBody renders a container listing.
func containerBody(f, container string, entries []peers.ObjectEntry) []byte {
	rows := make([]row, len(entries))
	for i, e := range entries {
		rows[i] = row{subdir: e.Subdir, tag: "object", fields: []field{{"name", e.Name}, {"hash", e.ETag},
			{"bytes", e.Size}, {"content_type", e.ContentType}, {"last_modified", listTime(e.LastModified)}}}
	}
	return listBody(f, "container", container, rows)
}
