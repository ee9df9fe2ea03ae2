package swift

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/peers"
)

// objectHeaders describes an object in a response.
func objectHeaders(h http.Header, info object.Info) {
	h.Set("Etag", etagOf(info))
	if info.SLO {
		h.Set("X-Static-Large-Object", "True")
	}
	if info.DLO != "" {
		h.Set("X-Object-Manifest", info.DLO)
	}
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("X-Timestamp", timestamp(info.LastModified))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", info.ContentType)
	if !info.DeleteAt.IsZero() {
		h.Set("X-Delete-At", strconv.FormatInt(info.DeleteAt.Unix(), 10))
	}
	setMeta(h, "Object", info.Metadata)
}

// etagOf is an object's Etag header: a large object's is quoted, as
// Swift's (it is no MD5 of the bytes).
func etagOf(info object.Info) string {
	if info.SLO || info.DLO != "" {
		return `"` + info.ETag + `"`
	}
	return info.ETag
}

// deleteAt reads X-Delete-At and X-Delete-After (zero: none); a bad or
// past value is Swift's 400 text.
func deleteAt(h http.Header, now time.Time) (time.Time, string) {
	if v := h.Get("X-Delete-After"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, "Non-integer X-Delete-After"
		}
		if n <= 0 {
			return time.Time{}, "X-Delete-After in past"
		}
		return now.Add(time.Duration(n) * time.Second), ""
	}
	if v := h.Get("X-Delete-At"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, "Non-integer X-Delete-At"
		}
		at := time.Unix(n, 0)
		if !at.After(now) {
			return time.Time{}, "X-Delete-At in past"
		}
		return at, ""
	}
	return time.Time{}, ""
}

// guessType is Swift's content type for an object sent without one (or
// with X-Detect-Content-Type): from its name's extension.
func guessType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func requestType(r *http.Request, name string) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" || strings.EqualFold(r.Header.Get("X-Detect-Content-Type"), "true") {
		return guessType(name)
	}
	return ct
}

// splitRef splits "container/object" (X-Copy-From, Destination; URL
// quoted, a leading '/' allowed).
func splitRef(v string) (string, string, bool) {
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	c, o, ok := strings.Cut(strings.TrimPrefix(v, "/"), "/")
	return c, o, ok && c != "" && o != ""
}

// accountRef reads an account header (X-Copy-From-Account,
// Destination-Account): "" is the request's own.
func accountRef(v, own string) (string, bool) {
	if v == "" {
		return own, true
	}
	a, ok := strings.CutPrefix(v, AccountPrefix)
	return a, ok && a != ""
}

func (a *API) objectPut(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	at, bad := deleteAt(r.Header, time.Now())
	if bad != "" {
		writeText(w, r, http.StatusBadRequest, bad)
		return
	}
	if from := r.Header.Get("X-Copy-From"); from != "" {
		if r.ContentLength != 0 {
			writeText(w, r, http.StatusBadRequest, "Copy requests require a zero byte body")
			return
		}
		srcC, srcO, ok := splitRef(from)
		srcA, okA := accountRef(r.Header.Get("X-Copy-From-Account"), t.account)
		if !ok || !okA {
			writeText(w, r, http.StatusPreconditionFailed, "X-Copy-From header must be of the form <container name>/<object name>")
			return
		}
		a.copy(w, r, c, object.CopySpec{Account: srcA, Container: srcC, Name: srcO}, t, at)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if inm != "*" {
			writeText(w, r, http.StatusBadRequest, "If-None-Match only supports *")
			return
		}
		_, err := a.Objects.HeadObject(r.Context(), c, t.account, t.container, t.object)
		if err == nil {
			writeStatus(w, r, http.StatusPreconditionFailed)
			return
		}
		if !errors.Is(err, object.ErrNotFound) {
			a.fail(w, r, err)
			return
		}
	}
	if r.ContentLength < 0 && !isChunked(r) {
		writeStatus(w, r, http.StatusLengthRequired)
		return
	}
	spec := object.PutSpec{Size: r.ContentLength, ETag: strings.ToLower(strings.Trim(r.Header.Get("Etag"), `"`)),
		ContentType: requestType(r, t.object), Metadata: metaChange(r.Header, "Object").Set, DeleteAt: at}
	spec.DLO = manifestHeader(r.Header)
	put := a.Objects.PutObject
	if r.URL.Query().Get("multipart-manifest") == "put" {
		put = a.Objects.PutManifest
	}
	info, err := put(r.Context(), c, t.account, t.container, t.object, r.Body, spec)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	created(w, info)
}

// manifestHeader is X-Object-Manifest, unescaped as Swift does.
func manifestHeader(h http.Header) string {
	m := h.Get("X-Object-Manifest")
	if u, err := url.PathUnescape(m); err == nil {
		m = u
	}
	return m
}

func isChunked(r *http.Request) bool {
	for _, te := range r.TransferEncoding {
		if te == "chunked" {
			return true
		}
	}
	return false
}

func created(w http.ResponseWriter, info object.Info) {
	h := w.Header()
	// A DLO manifest's own bytes were stored: their MD5.
	h.Set("Etag", etagOf(object.Info{ObjectInfo: info.ObjectInfo, SLO: info.SLO}))
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Content-Type", "text/html; charset=UTF-8")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// copy makes t from src: Swift's PUT with X-Copy-From and its COPY.
func (a *API) copy(w http.ResponseWriter, r *http.Request, c object.Caller, src object.CopySpec, t target, at time.Time) {
	src.Metadata = metaChange(r.Header, "Object").Set
	src.FreshMetadata = strings.EqualFold(r.Header.Get("X-Fresh-Metadata"), "true")
	src.DeleteAt = at
	if r.Header.Get("Content-Type") != "" {
		src.ContentType = requestType(r, t.object)
	}
	info, srcInfo, err := a.Objects.CopyObject(r.Context(), c, t.account, t.container, t.object, src)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("X-Copied-From", url.PathEscape(src.Container)+"/"+(&url.URL{Path: src.Name}).EscapedPath())
	h.Set("X-Copied-From-Account", url.PathEscape(AccountPrefix+src.Account))
	h.Set("X-Copied-From-Last-Modified", srcInfo.LastModified.UTC().Format(http.TimeFormat))
	created(w, info)
}

func (a *API) objectCopy(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	at, bad := deleteAt(r.Header, time.Now())
	if bad != "" {
		writeText(w, r, http.StatusBadRequest, bad)
		return
	}
	dstC, dstO, ok := splitRef(r.Header.Get("Destination"))
	dstA, okA := accountRef(r.Header.Get("Destination-Account"), t.account)
	if !ok || !okA {
		writeText(w, r, http.StatusPreconditionFailed, "Destination header must be of the form <container name>/<object name>")
		return
	}
	src := object.CopySpec{Account: t.account, Container: t.container, Name: t.object}
	a.copy(w, r, c, src, target{account: dstA, container: dstC, object: dstO, level: 3}, at)
}

func (a *API) objectPost(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	at, bad := deleteAt(r.Header, time.Now())
	if bad != "" {
		writeText(w, r, http.StatusBadRequest, bad)
		return
	}
	update := object.Update{ObjectUpdate: peers.ObjectUpdate{Metadata: metaChange(r.Header, "Object").Set, DeleteAt: at},
		DLO: manifestHeader(r.Header)}
	if r.Header.Get("Content-Type") != "" {
		update.ContentType = requestType(r, t.object)
	}
	for k, v := range update.Metadata {
		if v == "" { // an empty value is no metadata, as in Swift
			delete(update.Metadata, k)
		}
	}
	if _, err := a.Objects.UpdateObject(r.Context(), c, t.account, t.container, t.object, update); err != nil {
		a.fail(w, r, err)
		return
	}
	writeStatus(w, r, http.StatusAccepted)
}

func (a *API) objectDelete(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	if r.URL.Query().Get("multipart-manifest") == "delete" {
		deleted, notFound, err := a.Objects.DeleteLarge(r.Context(), c, t.account, t.container, t.object)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeBulk(w, r, bulkResult{Deleted: deleted, NotFound: notFound, Status: "200 OK", Errors: [][]string{}})
		return
	}
	if err := a.Objects.DeleteObject(r.Context(), c, t.account, t.container, t.object); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// objectGet serves GET and HEAD: conditional headers first (412, 304),
// then the range (206, multipart/byteranges for several, 416 when none
// lies within the object), else the whole object.
func (a *API) objectGet(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	if r.URL.Query().Get("multipart-manifest") == "get" {
		a.manifestGet(w, r, c, t)
		return
	}
	ranges, _ := parseRange(r.Header.Get("Range"))
	if r.Method == http.MethodHead || len(ranges) > 1 {
		info, err := a.Objects.HeadObject(r.Context(), c, t.account, t.container, t.object)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if !a.preconditions(w, r, info) {
			return
		}
		if r.Method == http.MethodHead {
			objectHeaders(w.Header(), info)
			w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
			w.WriteHeader(http.StatusOK)
			return
		}
		a.multipart(w, r, c, t, info, ranges)
		return
	}
	var rng *peers.ByteRange
	if len(ranges) == 1 {
		rng = &ranges[0]
	}
	info, rc, err := a.Objects.GetObject(r.Context(), c, t.account, t.container, t.object, rng)
	if errors.Is(err, object.ErrRange) {
		if !a.preconditions(w, r, info) {
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", info.Size))
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer rc.Close()
	if !a.preconditions(w, r, info) {
		return
	}
	objectHeaders(w.Header(), info)
	code, length := http.StatusOK, info.Size
	if rng != nil {
		off, n, _ := rng.Span(info.Size)
		code, length = http.StatusPartialContent, n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, info.Size))
	}
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(code)
	if _, err := io.Copy(w, rc); err != nil {
		// The status is sent: the only way left to say the body is bad
		// (a checksum that failed, a peer gone) is to cut the connection.
		a.Log.WithError(err).WithField("path", r.URL.Path).Warn("object read failed mid-stream")
		panic(http.ErrAbortHandler)
	}
}

// manifestGet answers an SLO's manifest as stored (another object as it
// is), as Swift's GET ?multipart-manifest=get.
func (a *API) manifestGet(w http.ResponseWriter, r *http.Request, c object.Caller, t target) {
	info, rc, err := a.Objects.GetManifest(r.Context(), c, t.account, t.container, t.object)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer rc.Close()
	objectHeaders(w.Header(), object.Info{ObjectInfo: info.ObjectInfo})
	if info.DLO != "" {
		w.Header().Set("X-Object-Manifest", info.DLO)
	}
	if info.SLO {
		w.Header().Set("X-Static-Large-Object", "True")
	}
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		a.Log.WithError(err).WithField("path", r.URL.Path).Warn("manifest read failed mid-stream")
		panic(http.ErrAbortHandler)
	}
}
