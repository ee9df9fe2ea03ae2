package ec2

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
)

// The upload path, econe-upload's counterpart: PUT (or POST) the image
// bytes to /ec2/upload?name=NAME[&disk_format=raw][&container_format=bare],
// signed with SigV4 (X-Amz-Content-Sha256: UNSIGNED-PAYLOAD or the body's
// SHA-256, checked as it streams), or presigned. The bytes stream to the
// peer the image service places the image on, never held whole; the answer
// names the image location (and AMI ID) RegisterImage takes.

// hashingReader hashes what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	return n, err
}

func (a *API) upload(v *verifier) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, wantSum, e := v.verifyStream(r)
		if e != nil {
			writeError(w, r, e)
			return
		}
		if !token.HasRole(identity.RoleMember) {
			writeError(w, r, unauthorizedOperation("You are not authorized to perform this operation: uploads need the member role on the project"))
			return
		}
		ctx := identity.WithToken(r.Context(), token)
		r = r.WithContext(ctx)
		q := r.URL.Query()
		spec := image.CreateSpec{Name: q.Get("name"), DiskFormat: q.Get("disk_format"), ContainerFormat: q.Get("container_format"), Visibility: "private"}
		if spec.Name == "" {
			writeError(w, r, missingParameter("name"))
			return
		}
		if spec.DiskFormat == "" {
			spec.DiskFormat = "raw"
		}
		if spec.ContainerFormat == "" {
			spec.ContainerFormat = "bare"
		}
		a.store(w, r, token, spec, r.Body, r.ContentLength, wantSum)
	}
}

// store makes a private image of spec, streams data into it (size -1 when
// unknown; wantSum, when set, the SHA-256 the data must have) and answers
// UploadImage's response: the image location and AMI ID RegisterImage
// takes. A failed upload's image is deleted.
func (a *API) store(w http.ResponseWriter, r *http.Request, token identity.Token, spec image.CreateSpec, data io.Reader, size int64, wantSum string) {
	ctx := r.Context()
	caller := image.CallerOf(token)
	img, err := a.Images.Create(ctx, caller, spec)
	if err != nil {
		a.fail(w, r, "Upload", imageErr(err, ""))
		return
	}
	body := &hashingReader{r: data, h: sha256.New()}
	err = a.Images.Upload(ctx, caller, img.ID, body, size)
	if err == nil && wantSum != "" && hex.EncodeToString(body.h.Sum(nil)) != wantSum {
		err = authFailure("the body's SHA-256 is not the X-Amz-Content-Sha256 the request was signed with")
	}
	if err != nil {
		if derr := a.Images.Delete(context.WithoutCancel(ctx), caller, img.ID); derr != nil {
			a.Log.WithError(derr).WithField("image", img.ID).Warn("ec2: image of a failed upload left behind")
		}
		a.fail(w, r, "Upload", imageErr(err, ""))
		return
	}
	id, err := a.ids.assign(ctx, prefixImage, img.ID)
	if err != nil {
		a.fail(w, r, "Upload", err)
		return
	}
	a.Log.WithFields(logrus.Fields{"image": img.ID, "ec2_id": id, "project": token.ProjectID, "peer": img.PeerName}).Info("ec2: image uploaded")
	writeResponse(w, r, "UploadImage", struct {
		ImageLocation string `xml:"imageLocation"`
		ImageID       string `xml:"imageId"`
	}{imageLocationPrefix + img.ID, id})
}
