package object

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// Object versioning, as Swift's versioned_writes middleware (legacy
// mode) does it. A container with a versions container (another
// container of the same account, named in X-Versions-Location or
// X-History-Location) keeps the object a PUT replaces: before the PUT,
// the current object is copied into the versions container as
// "<len(name) as 3 hex digits><name>/<its timestamp>", so one object's
// versions list together in age order. The modes differ on DELETE:
//
//   - stack (X-Versions-Location): the newest archived version moves
//     back in place of the object (or, with none, the object goes);
//   - history (X-History-Location): the object is archived too, then a
//     delete marker (an empty object of DeleteMarkerType) is put after
//     it, stamped with the DELETE's time, and the object deleted. As in
//     Swift, every history mode DELETE leaves a marker, one of a missing
//     object too (which is still 404).
//
// The caller needs write access to the versions container, which must
// exist when an object is archived (Swift's 412 when it does not). The
// copies stream through the broker, across peers when the two
// containers live on different ones.

// Versioning modes of a container.
const (
	ModeStack   = "stack"
	ModeHistory = "history"
)

// DeleteMarkerType is the content type of a history mode delete marker,
// Swift's own, so its clients and tools read a marker as one.
const DeleteMarkerType = "application/x-deleted;swift_versions_deleted=1"

// VersionsChange is a change to a container's versioning: nil is no
// change; an empty Location turns versioning off.
type VersionsChange struct {
	Mode     string
	Location string
}

func (v *VersionsChange) check() error {
	if v == nil || v.Location == "" {
		return nil
	}
	if v.Mode != ModeStack && v.Mode != ModeHistory {
		return invalid("Unknown versioning mode %q", v.Mode)
	}
	if strings.Contains(v.Location, "/") {
		return &Error{Message: "Container name cannot contain slashes", Err: ErrPrecondition}
	}
	if err := peers.CheckContainerName(v.Location); err != nil {
		return invalid("Versions location must be a container name of 1 to %d bytes of UTF-8 without NUL", peers.MaxContainerNameBytes)
	}
	return nil
}

func (v *VersionsChange) apply(ct *Container) {
	if v == nil {
		return
	}
	ct.VersionsLocation, ct.HistoryLocation = "", ""
	switch {
	case v.Location == "":
	case v.Mode == ModeHistory:
		ct.HistoryLocation = v.Location
	default:
		ct.VersionsLocation = v.Location
	}
}

// versions returns a container's versions container and mode ("": not
// versioned).
func (ct Container) versions() (location, mode string) {
	switch {
	case ct.HistoryLocation != "":
		return ct.HistoryLocation, ModeHistory
	case ct.VersionsLocation != "":
		return ct.VersionsLocation, ModeStack
	}
	return "", ""
}

// versionPrefix is the name prefix of every archived version of name.
func versionPrefix(name string) string { return fmt.Sprintf("%03x%s/", len(name), name) }

// versionName is the archived name of name's version stamped at t
// (Swift's internal timestamp form, which sorts in time order).
func versionName(name string, t time.Time) string {
	return versionPrefix(name) + fmt.Sprintf("%010d.%05d", t.Unix(), t.Nanosecond()/10000)
}

// versionsTarget resolves the versions container for an archive or a
// restore: it must exist (else ErrPrecondition, as Swift answers) and
// take the caller's writes.
func (s *Service) versionsTarget(ctx context.Context, c Caller, account, location string) (Container, peers.Objects, error) {
	vct, vobjects, err := s.target(ctx, c, account, location, OpWrite)
	if errors.Is(err, ErrNotFound) {
		return Container{}, nil, &Error{Message: "The versions container does not exist", Err: ErrPrecondition}
	}
	return vct, vobjects, err
}

// archive copies ct/name, as stored (a large object's manifest stays a
// manifest), into ct's versions container before a PUT or a history
// mode DELETE replaces it. No current object is nothing to archive.
func (s *Service) archive(ctx context.Context, c Caller, ct Container, objects peers.Objects, name string) error {
	location, _ := ct.versions()
	if location == "" {
		return nil
	}
	// The caller's access is checked first; a missing versions container
	// matters only when there is an object to keep.
	vct, vobjects, verr := s.versionsTarget(ctx, c, ct.Project, location)
	if verr != nil && !errors.Is(verr, ErrPrecondition) {
		return verr
	}
	pinfo, rc, err := objects.GetObject(ctx, ct.PeerContainer, name, nil)
	if errors.Is(err, peers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return peerErr(err, "reading "+ct.Name+"/"+name+" to archive it")
	}
	defer rc.Close()
	if verr != nil {
		return verr
	}
	_, err = s.putObject(ctx, vct, vobjects, versionName(name, pinfo.LastModified), rc, storedSpec(pinfo))
	return versionErr(err)
}

// deleteMarker puts a history mode DELETE's marker in ct's versions
// container, after archive: the versions container must exist and take
// the caller's writes (Swift's 412 and 403 otherwise).
func (s *Service) deleteMarker(ctx context.Context, c Caller, ct Container, name string) error {
	location, _ := ct.versions()
	vct, vobjects, err := s.versionsTarget(ctx, c, ct.Project, location)
	if err != nil {
		return err
	}
	_, err = s.putObject(ctx, vct, vobjects, versionName(name, time.Now()), strings.NewReader(""), PutSpec{ContentType: DeleteMarkerType})
	return versionErr(err)
}

// storedSpec puts an object back as it was stored: its raw content type
// (with any large object mark) and its bytes' MD5, checked on arrival.
func storedSpec(info peers.ObjectInfo) PutSpec {
	return PutSpec{Size: info.Size, ETag: info.ETag, ContentType: info.ContentType, Metadata: info.Metadata, DeleteAt: info.DeleteAt}
}

// versionErr turns a refused version copy into Swift's answer: a copy
// the storage refused as a request (a name too long, a quota) is 412,
// not the client's own request's fault.
func versionErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrOverQuota) || errors.Is(err, ErrTooLarge) {
		// Not the request's own fault: only ErrPrecondition is wrapped.
		return &Error{Message: "The version could not be kept", Err: fmt.Errorf("%w (%v)", ErrPrecondition, err)}
	}
	return err
}

// restore is a stack mode DELETE: the newest archived version of name
// that can still be read is moved back in ct/name. It reports false
// when there is none (or no versions container), so the object is
// simply deleted.
func (s *Service) restore(ctx context.Context, c Caller, ct Container, objects peers.Objects, name string) (bool, error) {
	location, _ := ct.versions()
	vct, err := s.container(ctx, ct.Project, location)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	vobjects, err := s.objects(vct)
	if err != nil {
		return false, err
	}
	opts := peers.ObjectListOptions{Prefix: versionPrefix(name), Reverse: true, Limit: 100}
	for {
		pctx, cancel := context.WithTimeout(ctx, s.timeout())
		rows, err := vobjects.ListObjects(pctx, vct.PeerContainer, opts)
		cancel()
		if err != nil {
			return false, peerErr(err, "listing the versions of "+ct.Name+"/"+name)
		}
		if len(rows) == 0 {
			return false, nil
		}
		// Versions exist: moving one needs write access to them.
		if _, _, err := s.versionsTarget(ctx, c, ct.Project, location); err != nil {
			return false, err
		}
		for _, row := range rows {
			ok, err := s.restoreOne(ctx, ct, objects, name, vct, vobjects, row.Name)
			if ok || err != nil {
				return ok, err
			}
		}
		opts.Marker = rows[len(rows)-1].Name
	}
}

// restoreOne copies one archived version over ct/name and deletes it
// from the versions container; a version gone meanwhile reports false.
func (s *Service) restoreOne(ctx context.Context, ct Container, objects peers.Objects, name string, vct Container, vobjects peers.Objects, version string) (bool, error) {
	pinfo, rc, err := vobjects.GetObject(ctx, vct.PeerContainer, version, nil)
	if errors.Is(err, peers.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, peerErr(err, "reading version "+vct.Name+"/"+version)
	}
	defer rc.Close()
	if _, err := s.putObject(ctx, ct, objects, name, rc, storedSpec(pinfo)); err != nil {
		return false, versionErr(err)
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	err = vobjects.DeleteObject(pctx, vct.PeerContainer, version)
	s.usage.forget(vct.PeerContainer)
	if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return false, peerErr(err, "deleting restored version "+vct.Name+"/"+version)
	}
	return true, nil
}
