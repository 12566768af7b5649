package mediaservice

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// body is the create/update body (the JSON, or the multipart body part).
type body struct {
	ID       *string   `json:"id"`
	Type     string    `json:"type"`
	Access   string    `json:"access"`
	URL      string    `json:"url"`
	RefIDs   []RefID   `json:"refIds"`
	Details  *Details  `json:"details"`
	Metadata *Metadata `json:"metadata"`
}

// refTypes are the contract's RefId.type enum (2025-04). The rule that
// assets with these references must be PUBLIC, and the MODULE and custom
// types, belong to the vendor's later contract.
var refTypes = []string{"BRAND", "CATEGORY", "LABEL", "PRODUCT"}

func (b *body) validate(wantType string, create bool) error {
	if b.Type != wantType {
		return badRequest(fmt.Sprintf("type must be %s for this content type", wantType))
	}
	if b.Access != "PUBLIC" && b.Access != "PRIVATE" {
		return badRequest("access must be PUBLIC or PRIVATE")
	}
	if create && b.ID != nil && !idRE.MatchString(*b.ID) {
		return badRequest("id must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if len(b.RefIDs) > 100 {
		return badRequest("at most 100 refIds")
	}
	for _, r := range b.RefIDs {
		if r.ID == "" || len(r.ID) > 256 || r.Type == "" {
			return badRequest("every refId needs an id and a type")
		}
		if !slices.Contains(refTypes, r.Type) {
			return badRequest("refIds type must be one of " + strings.Join(refTypes, ", "))
		}
	}
	if b.Details != nil && (len(b.Details.Filename) > 255 || len(b.Details.MimeType) > 255) {
		return badRequest("details.filename and details.mimeType are at most 255 characters")
	}
	if wantType == "LINK" {
		u, err := url.Parse(b.URL)
		if b.URL == "" || len(b.URL) > 2048 || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return badRequest("url must be an http or https URL of at most 2048 characters")
		}
	}
	return nil
}

// readRequest reads a create or update request: JSON (LINK) or multipart
// with a `body` part and a `file` part (BLOB), the file streamed into the
// store. It returns the body, the upload (BLOB) and the file part's name
// and declared type.
func (a *API) readRequest(r *http.Request, client string) (b body, up *engine.Upload, fname, ftype string, typ string, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		if err := web.DecodeJSON(r.Body, &b); err != nil {
			if web.Status(err) == http.StatusRequestEntityTooLarge {
				return b, nil, "", "", "", err
			}
			return b, nil, "", "", "", badRequest("the body is not a valid asset: " + err.Error())
		}
		return b, nil, "", "", "LINK", nil
	case "multipart/form-data":
	default:
		return b, nil, "", "", "", badRequest("Content-Type must be multipart/form-data (BLOB) or application/json (LINK)")
	}
	gotBody := false
	file, err := web.ReadForm(r, a.Engine, web.Form{
		Limit: a.cfg.MaxFile,
		Name: func(name string) (string, error) {
			if len(name) > 255 {
				return "", badRequest("the file part's name and type are at most 255 characters")
			}
			return name, nil
		},
		Fields: []string{"body"},
		Field: func(_ string, raw []byte) error {
			if err := json.Unmarshal(raw, &b); err != nil {
				return badRequest("the body part is not a valid asset: " + err.Error())
			}
			gotBody = true
			return nil
		},
		Slot: func() (func(), error) {
			return a.Limits.Uploads.Acquire(r.Context(), web.Identity("mediaservice", client))
		},
	})
	var fe *web.FormError
	switch {
	case errors.As(err, &fe):
		return b, nil, "", "", "", badRequest("bad multipart body: " + fe.Reason)
	case err != nil:
		return b, nil, "", "", "", err
	case !gotBody:
		file.Close()
		return b, nil, "", "", "", badRequest("a BLOB needs a body part and a file part")
	}
	return b, file.Upload, file.Name, file.ContentType, "BLOB", nil
}

// newID returns a new asset id: 24 random hex digits, the shape of the
// documented examples.
func newID() string { return publink.NewID()[:24] }
