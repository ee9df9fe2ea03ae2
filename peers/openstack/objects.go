package openstack

import (
	"cmp"
	"context"
	"crypto/md5" //nolint:gosec // Swift's ETag is MD5; it is compared, not trusted for security
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/containers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/objects"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/cloudmux/cloudmux/peers"
)

// objectCloud is a Cloud whose catalog has an object store: it adds
// peers.Objects over Swift. The broker finds the ability by type
// assertion, so a cloud without Swift must not have these methods at all
// (rather than answering ErrNotSupported, which the broker would find only
// by placing a container there); Peer picks the type.
type objectCloud struct{ *Cloud }

var _ peers.Objects = (*objectCloud)(nil)

// Peer is c as the pool holds it: with peers.Objects when the catalog
// lists an object store (Swift), without it otherwise.
func (c *Cloud) Peer() peers.Cloud {
	if c.object == nil {
		return c
	}
	return &objectCloud{c}
}

// HasObjectStore reports whether the catalog lists an object store.
func (c *Cloud) HasObjectStore() bool { return c.object != nil }

// defaultContentType is what an object put without one gets, as on the
// local cloud (Swift would guess from the name's extension instead).
const defaultContentType = "application/octet-stream"

func (o *objectCloud) objectURL(ctr, name string) string {
	return o.object.ServiceURL(url.PathEscape(ctr), url.PathEscape(name))
}

// CreateContainer is Swift's container PUT (201, or 202 when it exists).
func (o *objectCloud) CreateContainer(ctx context.Context, name string) error {
	if err := peers.CheckContainerName(name); err != nil {
		return err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	err := containers.Create(ctx, o.object, name, nil).Err
	return o.translate("swift: create container "+name, err)
}

// DeleteContainer is Swift's container DELETE: 409 when it holds objects.
func (o *objectCloud) DeleteContainer(ctx context.Context, name string) error {
	if err := peers.CheckContainerName(name); err != nil {
		return err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	return o.translate("swift: delete container "+name, containers.Delete(ctx, o.object, name).Err)
}

// ContainerStats reads the container HEAD's counters. Swift counts an
// expired object until its expirer removes it.
func (o *objectCloud) ContainerStats(ctx context.Context, name string) (peers.ContainerStats, error) {
	if err := peers.CheckContainerName(name); err != nil {
		return peers.ContainerStats{}, err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	r := containers.Get(ctx, o.object, name, nil)
	if r.Err != nil {
		return peers.ContainerStats{}, o.translate("swift: head container "+name, r.Err)
	}
	objs, err1 := headerInt(r.Header, "X-Container-Object-Count")
	bytes, err2 := headerInt(r.Header, "X-Container-Bytes-Used")
	if err := errors.Join(err1, err2); err != nil {
		return peers.ContainerStats{}, fmt.Errorf("swift: head container %s: %w: %w", name, peers.ErrUnavailable, err)
	}
	return peers.ContainerStats{Objects: objs, Bytes: bytes}, nil
}

// ListContainers is one account GET (json) narrowed by prefix and marker.
// A cluster whose listing limit is below the asked one refuses it (412):
// its own page size is then what it gives.
func (o *objectCloud) ListContainers(ctx context.Context, prefix, marker string, limit int) ([]string, error) {
	if err := peers.CheckListOptions(peers.ObjectListOptions{Limit: limit}); err != nil {
		return nil, err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	page := func(limit int) ([]string, error) {
		var names []string
		err := containers.List(o.object, containers.ListOpts{Prefix: prefix, Marker: marker, Limit: limit}).EachPage(ctx,
			func(_ context.Context, p pagination.Page) (bool, error) {
				var err error
				names, err = containers.ExtractNames(p)
				return false, err
			})
		return names, err
	}
	names, err := page(limit)
	if limit > 0 && gophercloud.ResponseCodeIs(err, http.StatusPreconditionFailed) {
		names, err = page(0)
	}
	if err != nil {
		return nil, o.translate("swift: list containers", err)
	}
	return names[:min(len(names), cmp.Or(limit, peers.MaxListLimit))], nil
}

// headerInt reads a non-negative integer header.
func headerInt(h http.Header, key string) (int64, error) {
	n, err := strconv.ParseInt(h.Get(key), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("header %s %q is not a count", key, h.Get(key))
	}
	return n, nil
}

// listQuery is a container listing's query: gophercloud's ListOpts has no
// reverse, which Swift has had since 2.16.
type listQuery peers.ObjectListOptions

func (q listQuery) ToObjectListParams() (string, error) {
	v := url.Values{"format": {"json"}}
	for k, s := range map[string]string{"prefix": q.Prefix, "delimiter": q.Delimiter, "marker": q.Marker, "end_marker": q.EndMarker} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Reverse {
		v.Set("reverse", "true")
	}
	return "?" + v.Encode(), nil
}

// ListObjects is one container GET: Swift pages, narrows, rolls up and
// reverses as the contract says. Swift lists an expired object until its
// expirer removes it (the listing does not carry expiry).
func (o *objectCloud) ListObjects(ctx context.Context, ctr string, opts peers.ObjectListOptions) ([]peers.ObjectEntry, error) {
	if err := peers.CheckContainerName(ctr); err != nil {
		return nil, err
	}
	if err := peers.CheckListOptions(opts); err != nil {
		return nil, err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	rows, err := o.listPage(ctx, ctr, opts)
	if opts.Limit > 0 && gophercloud.ResponseCodeIs(err, http.StatusPreconditionFailed) {
		// A cluster whose container_listing_limit is below the contract's
		// 10,000 refuses a larger limit (412); its own page size is then
		// the most it gives, and the caller pages on by marker.
		opts.Limit = 0
		rows, err = o.listPage(ctx, ctr, opts)
	}
	if err != nil {
		return nil, o.translate("swift: list container "+ctr, err)
	}
	if opts.Limit == 0 && len(rows) > peers.MaxListLimit {
		rows = rows[:peers.MaxListLimit] // a cluster configured for larger pages
	}
	out := make([]peers.ObjectEntry, len(rows))
	for i, r := range rows {
		if r.Subdir != "" {
			out[i] = peers.ObjectEntry{Subdir: r.Subdir}
			continue
		}
		out[i] = peers.ObjectEntry{ObjectInfo: peers.ObjectInfo{Name: r.Name, Size: r.Bytes, ETag: strings.ToLower(r.Hash),
			ContentType: r.ContentType, LastModified: ceilSecond(r.LastModified)}}
	}
	return out, nil
}

// listPage is one container GET: the caller pages by marker.
func (o *objectCloud) listPage(ctx context.Context, ctr string, opts peers.ObjectListOptions) ([]objects.Object, error) {
	var rows []objects.Object
	err := objects.List(o.object, ctr, listQuery(opts)).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		var err error
		rows, err = objects.ExtractInfo(p)
		return false, err
	})
	return rows, err
}

// ceilSecond is Swift's Last-Modified of a timestamp (it rounds up), so a
// listing's times match HEAD's.
func ceilSecond(t time.Time) time.Time {
	if s := t.Truncate(time.Second); !s.Equal(t) {
		return s.Add(time.Second)
	}
	return t
}

// checkObject refuses a container or object name outside the contract.
func checkObject(ctr, name string) error {
	if err := peers.CheckContainerName(ctr); err != nil {
		return err
	}
	return peers.CheckObjectName(name)
}

// PutObject streams data to Swift in one PUT, never buffering it: with
// Content-Length when spec.Size is known, chunked otherwise, and with
// spec.ETag as the ETag header, which Swift verifies (422) before it
// commits. The driver also counts and hashes what passes, and withholds
// the last bytes when the size or the MD5 is wrong, so Swift sees a cut
// upload and keeps the previous object. Expect: 100-continue lets Swift
// refuse (missing container, quota) before the data flows.
//
// This is a plain HTTP request, not gophercloud's objects.Create: that
// sends any non-seekable body chunked (never Content-Length), reads a
// body without an ETag whole into memory to hash it, and would replay a
// consumed stream after a 401.
//
// A spec.DeleteAt already past is an object that is gone as soon as it is
// stored, which Swift refuses to store (400): the driver reads and checks
// the data, then deletes the name's previous object.
func (o *objectCloud) PutObject(ctx context.Context, ctr, name string, data io.Reader, spec peers.ObjectSpec) (peers.ObjectInfo, error) {
	if err := checkPut(ctr, name, spec); err != nil {
		return peers.ObjectInfo{}, err
	}
	what := fmt.Sprintf("swift: put object %s/%s", ctr, name)
	size := max(spec.Size, -1)
	body := &uploadBody{what: "the object data", ctx: ctx, r: data, size: size, h: md5.New(), expected: strings.ToLower(spec.ETag)} //nolint:gosec // see import
	if expired(spec.DeleteAt) {
		return o.putExpired(ctx, ctr, name, body, spec)
	}
	// The upload cannot be replayed after a 401: make sure the token
	// outlives a long upload.
	if err := o.freshToken(ctx, 15*time.Minute); err != nil {
		return peers.ObjectInfo{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, o.objectURL(ctr, name), body)
	if err != nil {
		return peers.ObjectInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case size == 0:
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
	case size > 0:
		req.ContentLength = size
		req.Header.Set("Expect", "100-continue")
	default:
		req.Header.Set("Expect", "100-continue")
	}
	for k, v := range objectHeaders(contentType(spec.ContentType), spec.Metadata, spec.DeleteAt) {
		req.Header.Set(k, v)
	}
	if body.expected != "" {
		req.Header.Set("ETag", body.expected)
	}
	req.Header.Set("X-Auth-Token", o.provider.Token())
	req.Header.Set("User-Agent", o.provider.UserAgent.Join())
	resp, err := o.http.Do(req)
	if err == nil {
		err = responseError(resp, http.MethodPut, []int{http.StatusCreated})
	}
	switch {
	case err != nil && body.err != nil:
		return peers.ObjectInfo{}, peers.AtPeer(o.cfg.Name, fmt.Errorf("%s: %w", what, body.err))
	case err != nil:
		return peers.ObjectInfo{}, o.translate(what, err)
	}
	sent := hex.EncodeToString(body.h.Sum(nil))
	if stored := etagOf(resp.Header); stored != sent {
		// Swift verified nothing (no ETag was given) and stored other
		// bytes than were sent: do not leave them readable.
		o.discardObject(ctr, name)
		return peers.ObjectInfo{}, peers.AtPeer(o.cfg.Name, fmt.Errorf("%s: Swift stored MD5 %s but %s was sent: %w", what, stored, sent, peers.ErrUnavailable))
	}
	modified, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	if err != nil {
		// An older Swift without Last-Modified on PUT: HEAD says it.
		return o.HeadObject(ctx, ctr, name)
	}
	return peers.ObjectInfo{Name: name, Size: body.n, ETag: sent, ContentType: contentType(spec.ContentType),
		LastModified: modified, Metadata: cloneMeta(spec.Metadata), DeleteAt: deleteAt(spec.DeleteAt)}, nil
}

// checkPut refuses a PutObject outside the contract before any data moves.
func checkPut(ctr, name string, spec peers.ObjectSpec) error {
	if err := checkObject(ctr, name); err != nil {
		return err
	}
	if err := peers.CheckObjectMetadata(spec.Metadata); err != nil {
		return err
	}
	if spec.ETag != "" {
		if b, err := hex.DecodeString(spec.ETag); err != nil || len(b) != md5.Size {
			return fmt.Errorf("ETag %q is not a hex MD5: %w", spec.ETag, peers.ErrInvalid)
		}
	}
	return nil
}

// putExpired stores an object whose expiry has passed: nothing, once the
// data has been read and checked, and the name's previous object deleted.
func (o *objectCloud) putExpired(ctx context.Context, ctr, name string, body *uploadBody, spec peers.ObjectSpec) (peers.ObjectInfo, error) {
	what := fmt.Sprintf("swift: put object %s/%s", ctr, name)
	if _, err := io.Copy(io.Discard, body); err != nil {
		return peers.ObjectInfo{}, fmt.Errorf("%s: %w", what, err)
	}
	if _, err := o.ContainerStats(ctx, ctr); err != nil {
		return peers.ObjectInfo{}, err
	}
	if err := o.DeleteObject(ctx, ctr, name); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return peers.ObjectInfo{}, err
	}
	return peers.ObjectInfo{Name: name, Size: body.n, ETag: hex.EncodeToString(body.h.Sum(nil)), ContentType: contentType(spec.ContentType),
		LastModified: ceilSecond(time.Now()), Metadata: cloneMeta(spec.Metadata), DeleteAt: deleteAt(spec.DeleteAt)}, nil
}

// discardObject deletes bytes that must not stay, on its own deadline (the
// caller's context may be what ended).
func (o *objectCloud) discardObject(ctr, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.CallTimeout)
	defer cancel()
	if err := o.DeleteObject(ctx, ctr, name); err != nil && !errors.Is(err, peers.ErrNotFound) {
		o.log.WithError(err).WithField("object", ctr+"/"+name).Warn("openstack: cannot delete an object whose stored bytes differ from those sent")
	}
}

func contentType(ct string) string {
	if ct == "" {
		return defaultContentType
	}
	return ct
}

func cloneMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// expired reports an expiry Swift would refuse as past: it keeps whole
// seconds (X-Delete-At) and refuses one before the current time, so an
// expiry within the current second is past too.
func expired(at time.Time) bool {
	return !at.IsZero() && at.Unix() <= time.Now().Unix()
}

// deleteAt is t as Swift keeps it: whole seconds.
func deleteAt(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.Unix(t.Unix(), 0).UTC()
}

// objectHeaders are an object's PUT or POST headers: its content type
// (none: kept, on a POST), user metadata and expiry.
func objectHeaders(ctype string, meta map[string]string, expiry time.Time) map[string]string {
	h := make(map[string]string, len(meta)+2)
	if ctype != "" {
		h["Content-Type"] = ctype
	}
	for k, v := range meta {
		h[metaPrefix+encodeMetaKey(k)] = v
	}
	if !expiry.IsZero() {
		h["X-Delete-At"] = strconv.FormatInt(expiry.Unix(), 10)
	}
	return h
}

const metaPrefix = "X-Object-Meta-"

// encodeMetaKey makes a metadata key survive Swift's WSGI stack, which
// upper-cases header names and turns '_' into '-': bytes other than
// a-z, 0-9 and '-' travel percent-encoded ('%' itself included), and
// decodeMetaKey undoes it. Swift's 128-byte limit applies to the encoded
// key (a key of many such bytes may be refused there: ErrInvalid).
func encodeMetaKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func decodeMetaKey(k string) string {
	k = strings.ToLower(k)
	if d, err := url.PathUnescape(k); err == nil {
		return d
	}
	return k
}

// etagOf is the ETag header without quotes (Swift quotes a manifest's).
func etagOf(h http.Header) string {
	return strings.ToLower(strings.Trim(h.Get("Etag"), `"`))
}

// objectInfo reads an object's HEAD or GET headers; size is the whole
// object's (a ranged GET's Content-Length is the range's).
func objectInfo(name string, size int64, h http.Header) peers.ObjectInfo {
	info := peers.ObjectInfo{Name: name, Size: size, ETag: etagOf(h), ContentType: h.Get("Content-Type")}
	info.LastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	for k, v := range h {
		if len(k) > len(metaPrefix) && strings.EqualFold(k[:len(metaPrefix)], metaPrefix) && len(v) > 0 {
			if info.Metadata == nil {
				info.Metadata = map[string]string{}
			}
			info.Metadata[decodeMetaKey(k[len(metaPrefix):])] = v[0]
		}
	}
	if at, err := strconv.ParseInt(h.Get("X-Delete-At"), 10, 64); err == nil {
		info.DeleteAt = time.Unix(at, 0).UTC()
	}
	return info
}

// HeadObject is Swift's object HEAD; an expired object is 404 there.
func (o *objectCloud) HeadObject(ctx context.Context, ctr, name string) (peers.ObjectInfo, error) {
	if err := checkObject(ctr, name); err != nil {
		return peers.ObjectInfo{}, err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	r := objects.Get(ctx, o.object, ctr, name, nil)
	if r.Err != nil {
		return peers.ObjectInfo{}, o.translate(fmt.Sprintf("swift: head object %s/%s", ctr, name), r.Err)
	}
	size, err := headerInt(r.Header, "Content-Length")
	if err != nil {
		return peers.ObjectInfo{}, fmt.Errorf("swift: head object %s/%s: %w: %w", ctr, name, peers.ErrUnavailable, err)
	}
	return objectInfo(name, size, r.Header), nil
}

// updateHeaders is an object POST's headers for gophercloud.
type updateHeaders map[string]string

func (h updateHeaders) ToObjectUpdateMap() (map[string]string, error) { return h, nil }

// UpdateObject is Swift's object POST, which replaces the user metadata
// and the expiry (a POST without X-Delete-At clears it) and keeps the
// content type unless one is sent; then a HEAD for the result. An expiry
// already past, which Swift refuses, deletes the object instead.
func (o *objectCloud) UpdateObject(ctx context.Context, ctr, name string, update peers.ObjectUpdate) (peers.ObjectInfo, error) {
	if err := checkObject(ctr, name); err != nil {
		return peers.ObjectInfo{}, err
	}
	if err := peers.CheckObjectMetadata(update.Metadata); err != nil {
		return peers.ObjectInfo{}, err
	}
	if expired(update.DeleteAt) {
		info, err := o.HeadObject(ctx, ctr, name)
		if err != nil {
			return peers.ObjectInfo{}, err
		}
		if err := o.DeleteObject(ctx, ctr, name); err != nil && !errors.Is(err, peers.ErrNotFound) {
			return peers.ObjectInfo{}, err
		}
		if update.ContentType != "" {
			info.ContentType = update.ContentType
		}
		info.Metadata, info.DeleteAt = cloneMeta(update.Metadata), deleteAt(update.DeleteAt)
		return info, nil
	}
	cctx, cancel := o.call(ctx)
	defer cancel()
	err := objects.Update(cctx, o.object, ctr, name, updateHeaders(objectHeaders(update.ContentType, update.Metadata, update.DeleteAt))).Err
	if err != nil {
		return peers.ObjectInfo{}, o.translate(fmt.Sprintf("swift: post object %s/%s", ctr, name), err)
	}
	return o.HeadObject(ctx, ctr, name)
}

// DeleteObject is Swift's object DELETE.
func (o *objectCloud) DeleteObject(ctx context.Context, ctr, name string) error {
	if err := checkObject(ctr, name); err != nil {
		return err
	}
	ctx, cancel := o.call(ctx)
	defer cancel()
	return o.translate(fmt.Sprintf("swift: delete object %s/%s", ctr, name), objects.Delete(ctx, o.object, ctr, name, nil).Err)
}

// rangeHeader is rng as an HTTP Range header.
func rangeHeader(rng peers.ByteRange) string {
	switch {
	case rng.Suffix > 0:
		return fmt.Sprintf("bytes=-%d", rng.Suffix)
	case rng.Last < 0:
		return fmt.Sprintf("bytes=%d-", rng.First)
	}
	return fmt.Sprintf("bytes=%d-%d", rng.First, rng.Last)
}

// contentRangeSize reads the whole size from a Content-Range header
// ("bytes 0-9/100" or "bytes */100").
func contentRangeSize(h http.Header) (int64, bool) {
	cr := h.Get("Content-Range")
	_, total, ok := strings.Cut(cr, "/")
	if !ok || !strings.HasPrefix(cr, "bytes ") {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// GetObject is Swift's object GET, with a Range header for rng. Swift
// answers an unsatisfiable range 416 with the object's headers, which
// give the info; a suffix range of an empty object it answers 200 with
// nothing, which the driver turns into the contract's
// ErrRangeNotSatisfiable too. A whole-object read checks the bytes'
// MD5 against the ETag at the end. The body streams: no deadline of the
// driver's own bounds it, only ctx.
func (o *objectCloud) GetObject(ctx context.Context, ctr, name string, rng *peers.ByteRange) (peers.ObjectInfo, io.ReadCloser, error) {
	if err := checkObject(ctr, name); err != nil {
		return peers.ObjectInfo{}, nil, err
	}
	what := fmt.Sprintf("swift: get object %s/%s", ctr, name)
	var opts objects.DownloadOpts
	if rng != nil {
		if _, _, err := rng.Span(math.MaxInt64); errors.Is(err, peers.ErrInvalid) {
			return peers.ObjectInfo{}, nil, err
		}
		opts.Range = rangeHeader(*rng)
	}
	r := objects.Download(ctx, o.object, ctr, name, opts)
	if r.Err != nil {
		var e gophercloud.ErrUnexpectedResponseCode
		if errors.As(r.Err, &e) && e.Actual == http.StatusRequestedRangeNotSatisfiable {
			if size, ok := contentRangeSize(e.ResponseHeader); ok {
				return objectInfo(name, size, e.ResponseHeader), nil, fmt.Errorf("%s: range %s: %w", what, opts.Range, peers.ErrRangeNotSatisfiable)
			}
			info, err := o.HeadObject(ctx, ctr, name)
			if err != nil {
				return peers.ObjectInfo{}, nil, err
			}
			return info, nil, fmt.Errorf("%s: range %s: %w", what, opts.Range, peers.ErrRangeNotSatisfiable)
		}
		return peers.ObjectInfo{}, nil, o.translate(what, r.Err)
	}
	if size, ok := contentRangeSize(r.Header); ok { // 206: the range only
		return objectInfo(name, size, r.Header), &downloadBody{rc: r.Body, what: what}, nil
	}
	size, err := headerInt(r.Header, "Content-Length")
	if err != nil {
		r.Body.Close()
		return peers.ObjectInfo{}, nil, fmt.Errorf("%s: %w: %w", what, peers.ErrUnavailable, err)
	}
	info := objectInfo(name, size, r.Header)
	whole := &downloadBody{rc: r.Body, h: md5.New(), want: info.ETag, what: what} //nolint:gosec // see import
	if rng == nil {
		return info, whole, nil
	}
	// 200 to a ranged GET: the whole object, of which the range is cut.
	off, n, err := rng.Span(size)
	if err != nil {
		r.Body.Close()
		return info, nil, fmt.Errorf("%s: range %s: %w", what, opts.Range, err)
	}
	if off == 0 && n == size {
		return info, whole, nil
	}
	if _, err := io.CopyN(io.Discard, r.Body, off); err != nil {
		r.Body.Close()
		return peers.ObjectInfo{}, nil, translate(what, err)
	}
	return info, &downloadBody{rc: readCloser{io.LimitReader(r.Body, n), r.Body}, what: what}, nil
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
