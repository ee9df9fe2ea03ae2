package swift

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/peers"
)

// maxRanges is the most ranges one request may ask; a Range header with
// more is ignored, as Swift ignores an abusive one.
const maxRanges = 50

// parseRange reads a Range header's byte ranges. A header that is not a
// well-formed bytes range set is ignored (nil, false): the whole object
// is sent, as Swift does.
func parseRange(v string) ([]peers.ByteRange, bool) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok {
		return nil, false
	}
	var out []peers.ByteRange
	for _, part := range strings.Split(spec, ",") {
		first, last, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return nil, false
		}
		if first == "" {
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n <= 0 {
				return nil, false
			}
			out = append(out, peers.ByteRange{Suffix: n})
			continue
		}
		f, err := strconv.ParseInt(first, 10, 64)
		if err != nil || f < 0 {
			return nil, false
		}
		rng := peers.ByteRange{First: f, Last: -1}
		if last != "" {
			l, err := strconv.ParseInt(last, 10, 64)
			if err != nil || l < f {
				return nil, false
			}
			rng.Last = l
		}
		out = append(out, rng)
	}
	if len(out) == 0 || len(out) > maxRanges {
		return nil, false
	}
	return out, true
}

// etagMatches reports whether an If-Match / If-None-Match list names etag
// (or is "*").
func etagMatches(list, etag string) bool {
	for _, tok := range strings.Split(list, ",") {
		tok = strings.Trim(strings.TrimPrefix(strings.TrimSpace(tok), "W/"), `"`)
		if tok == "*" || tok == etag {
			return true
		}
	}
	return false
}

func headerTime(r *http.Request, name string) (time.Time, bool) {
	v := r.Header.Get(name)
	if v == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

// preconditions applies If-Match, If-Unmodified-Since (412), If-None-Match
// and If-Modified-Since (304) in RFC 7232's order; false means it
// answered.
func (a *API) preconditions(w http.ResponseWriter, r *http.Request, info object.Info) bool {
	modified := info.LastModified.Truncate(time.Second)
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagMatches(im, info.ETag) {
			writeStatus(w, r, http.StatusPreconditionFailed)
			return false
		}
	} else if t, ok := headerTime(r, "If-Unmodified-Since"); ok && modified.After(t) {
		writeStatus(w, r, http.StatusPreconditionFailed)
		return false
	}
	notModified := false
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		notModified = etagMatches(inm, info.ETag)
	} else if t, ok := headerTime(r, "If-Modified-Since"); ok {
		notModified = !modified.After(t)
	}
	if notModified {
		w.Header().Set("Etag", info.ETag)
		w.Header().Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusNotModified)
		return false
	}
	return true
}

// multipart answers several ranges as multipart/byteranges, each part
// read from the peer as it is sent. Ranges past the end are left out;
// when none is left, 416.
func (a *API) multipart(w http.ResponseWriter, r *http.Request, c object.Caller, t target, info object.Info, ranges []peers.ByteRange) {
	var ok []peers.ByteRange
	for _, rng := range ranges {
		if _, _, err := rng.Span(info.Size); err == nil {
			ok = append(ok, rng)
		}
	}
	if len(ok) == 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
		writeStatus(w, r, http.StatusRequestedRangeNotSatisfiable)
		return
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	boundary := hex.EncodeToString(b[:])
	objectHeaders(w.Header(), info)
	w.Header().Set("Content-Type", "multipart/byteranges; boundary="+boundary)
	w.WriteHeader(http.StatusPartialContent)
	for _, rng := range ok {
		off, n, _ := rng.Span(info.Size)
		_, rc, err := a.Objects.GetObject(r.Context(), c, t.account, t.container, t.object, &rng)
		if err == nil {
			_, err = fmt.Fprintf(w, "--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n", boundary, info.ContentType, off, off+n-1, info.Size)
			if err == nil {
				_, err = io.Copy(w, rc)
			}
			rc.Close()
		}
		if err == nil {
			_, err = io.WriteString(w, "\r\n")
		}
		if err != nil {
			a.Log.WithError(err).WithField("path", r.URL.Path).Warn("multipart range read failed mid-stream")
			panic(http.ErrAbortHandler)
		}
	}
	_, _ = fmt.Fprintf(w, "--%s--\r\n", boundary)
}
