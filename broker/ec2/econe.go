package ec2

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
)

// OpenNebula's econe tools, as they speak to the EC2 endpoint:
//
//   - econe-upload POSTs multipart/form-data to the endpoint's URL: the
//     fields Action=UploadImage, SignatureVersion=2, SignatureMethod
//     (HmacSHA1 or HmacSHA256), AWSAccessKeyId, Version, Timestamp and
//     Signature, then the image as the part named "file". The signature is
//     version 2 over those fields, made (by the amazon-ec2 gem's
//     canonical_string) with the URL's host without its port and the path
//     "/" whatever the endpoint's path; the image bytes are not signed (so
//     a signed request could carry other bytes within its 15 minutes: the
//     protocol's own weakness). The answer is UploadImage's: imageId (the
//     AMI ID econe-upload prints) and imageLocation.
//   - econe-register sends RegisterImage with ImageLocation alone (the AMI
//     ID the upload gave): the image keeps its name.
//
// The bytes stream to the image's peer as every upload's do, never held
// whole.

// isMultipart says whether r is a multipart form POST (econe-upload's).
func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && mt == "multipart/form-data"
}

// maxField bounds one form field of a multipart request (a parameter).
const maxField = 64 << 10

// maxEconeFields bounds the form fields ahead of an upload's file (econe
// sends about a dozen).
const maxEconeFields = 64

// econeUpload serves econe-upload's multipart UploadImage.
func (a *API) econeUpload(w http.ResponseWriter, r *http.Request, v *verifier) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, r, invalidParameter("the multipart body does not parse: %v", err))
		return
	}
	form := url.Values{}
	var file *multipart.Part
	// The fields ahead of the file are read before the signature can be
	// checked: their number and total size are bounded, so an unsigned
	// body cannot fill the broker's memory.
	fields, total := 0, 0
	for file == nil {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, r, invalidParameter("the multipart body does not parse: %v", err))
			return
		}
		if part.FormName() == "file" {
			file = part
			break
		}
		val, err := io.ReadAll(io.LimitReader(part, maxField+1))
		if err != nil || len(val) > maxField {
			writeError(w, r, invalidParameter("form field %q is unreadable or larger than %d bytes", part.FormName(), maxField))
			return
		}
		fields, total = fields+1, total+len(val)
		if fields > maxEconeFields || total > maxBody {
			writeError(w, r, invalidParameter("more than %d form fields or %d bytes of them ahead of the file", maxEconeFields, maxBody))
			return
		}
		form.Add(part.FormName(), string(val))
	}
	if form.Get("SignatureVersion") != "2" {
		writeError(w, r, errorf(http.StatusUnauthorized, "MissingAuthenticationToken",
			"a multipart UploadImage must be signed with Signature Version 2 in its form fields, ahead of the file"))
		return
	}
	// econe signs the path "/" whatever the endpoint's path.
	token, e := v.checkV2At(r, form, []string{r.URL.EscapedPath(), "/"})
	if e != nil {
		a.Log.WithField("reason", e.Message).Info("ec2: econe upload refused")
		writeError(w, r, e)
		return
	}
	if form.Get("Action") != "UploadImage" {
		writeError(w, r, errorf(http.StatusBadRequest, "InvalidAction", "a multipart request is econe's UploadImage; %q is sent as a form", form.Get("Action")))
		return
	}
	if file == nil {
		writeError(w, r, missingParameter("file"))
		return
	}
	if !token.HasRole(identity.RoleMember) {
		writeError(w, r, unauthorizedOperation("You are not authorized to perform this operation: uploads need the member role on the project"))
		return
	}
	r = r.WithContext(identity.WithToken(r.Context(), token))
	name := path.Base(strings.ReplaceAll(file.FileName(), `\`, "/"))
	if name == "." || name == "/" || name == "" {
		name = "econe-upload"
	}
	a.store(w, r, token, image.CreateSpec{Name: name, DiskFormat: "raw", ContainerFormat: "bare", Visibility: "private"}, file, -1, "")
}

// registerImage registers an uploaded image (ImageLocation: the location
// the upload answered, its AMI ID, or its Glance ID), under Name when
// given (econe-register gives none: the image keeps its name), with
// Description and Architecture, and returns its AMI ID. Only the
// project's own images can be registered.
func (a *API) registerImage(ctx context.Context, c *call) (any, error) {
	loc := c.params.get("ImageLocation")
	if loc == "" {
		return nil, errorf(http.StatusBadRequest, "MissingParameter",
			"The request must contain the parameter ImageLocation: upload the image first (PUT /ec2/upload, or Glance) and register its location")
	}
	img, err := a.resolveImage(ctx, c, loc)
	if err != nil {
		return nil, err
	}
	p := image.Patch{}
	if name := c.params.get("Name"); name != "" {
		p.Name = &name
	}
	p.SetProperties = map[string]string{}
	if d := c.params.get("Description"); d != "" {
		p.SetProperties["description"] = d
	}
	if arch := c.params.get("Architecture"); arch != "" {
		p.SetProperties["architecture"] = arch
	}
	if _, err := a.Images.Update(ctx, image.CallerOf(c.token), img.ID, p); err != nil {
		return nil, imageErr(err, loc)
	}
	id, err := a.ids.assign(ctx, prefixImage, img.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		ImageID string `xml:"imageId"`
	}{id}, nil
}
