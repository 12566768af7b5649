// Package resumable keeps tus uploads (the protocol of tus.io, served by
// github.com/tus/tusd/v2's handler) in the engine, so that a large upload
// survives dropped connections and restarts, and finishes as exactly what
// a plain upload makes.
//
// An upload is records in a namespace of its own, its ID as the tenant:
// "info" holds its state (tusd's FileInfo, and the offset), and each PATCH
// adds a record "part/<offset>" holding the bytes it brought, streamed
// into the engine as they arrive (content-defined chunks appended to
// segments, deduplicated) and committed, with the new offset, in one
// transaction: the offset a client reads after a crash is what was
// synced. A PATCH cut off midway keeps what arrived (tusd ends the body
// at the cut), so the client resumes from there. Every record expires
// with the upload (Store.TTL), so the sweeper deletes an abandoned one
// and GC reclaims its bytes (tusd's own stores never do: tus/tusd#435).
//
// Finishing makes the upload of the parts' content, in order, as a
// plain upload of it makes it (its BLAKE3, chunk list and deduplication):
// an upload sent in one PATCH (tus-js-client's default) is its one part's
// content already, referenced again without being read (but for its
// first bytes, which tell its type); one of several parts is read back
// and chunked again where the parts' edges change the chunks, each
// part's chunks taken as they are where the chunking meets them
// (engine.UploadParts). Store.Finish writes the API's record with it,
// in the transaction that deletes the parts and marks the upload done.
// An upload whose last part committed but whose finish did not (a crash
// between the two) is finished by the next request that reads it, so a
// client that finds its offset complete on resuming always finds the
// file made.
package resumable

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
	xslog "golang.org/x/exp/slog"

	"github.com/cairnstore/cairn/engine"
)

// Store is a tusd data store (handler.DataStore, with termination,
// concatenation and deferred length) in the engine.
type Store struct {
	Engine *engine.Engine
	// Namespace holds the uploads' records (one per API).
	Namespace string
	// TTL is how long an upload lives from its creation; past it, done
	// or not, it is deleted and its bytes are GC's.
	TTL time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Finish writes, in the transaction that completes an upload, the
	// record a plain upload of up would make, and returns what the client
	// is to learn of it (kept with the upload: Result). head is the
	// content's first HeadSize bytes (or all of a shorter one), to detect
	// its type from.
	Finish func(ctx context.Context, tx *engine.Tx, info handler.FileInfo, up *engine.Upload, head []byte) ([]byte, error)
	// Owns reports whether the request of ctx may have the upload whose
	// FileInfo.Storage is storage. One it may not is not found, to tusd
	// as to the client: a final upload naming another's partial one is
	// 404 as one naming none is, whether that one is complete or not.
	// Nil, no request has any.
	Owns func(ctx context.Context, storage map[string]string) bool
}

// HeadSize is how much of the content Finish is shown.
const HeadSize = 3072

// state is an upload's "info" record.
type state struct {
	Size           int64            `json:"size"`
	SizeIsDeferred bool             `json:"sizeDeferred,omitempty"`
	Offset         int64            `json:"offset"`
	MetaData       handler.MetaData `json:"meta,omitempty"`
	IsPartial      bool             `json:"partial,omitempty"`
	IsFinal        bool             `json:"final,omitempty"`
	PartialUploads []string         `json:"partials,omitempty"`
	// Storage is the API's own (who may write the upload, and where it
	// goes), set at creation.
	Storage map[string]string `json:"storage,omitempty"`
	// Done: finished; Result is what Finish returned.
	Done   bool   `json:"done,omitempty"`
	Result []byte `json:"result,omitempty"`
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Store) infoKey(id string) engine.Key {
	return engine.Key{Namespace: s.Namespace, Tenant: id, Name: "info"}
}

func (s *Store) partKey(id string, offset int64) engine.Key {
	return engine.Key{Namespace: s.Namespace, Tenant: id, Name: fmt.Sprintf("part/%020d", offset)}
}

// validID: the IDs NewUpload makes (32 hex digits).
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// UseIn composes the store into a tusd handler's store composer.
func (s *Store) UseIn(c *handler.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
	c.UseConcater(s)
	c.UseLengthDeferrer(s)
}

// NewUpload creates an upload; its ID is the store's (any ID in info is
// ignored).
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	st := state{
		Size: info.Size, SizeIsDeferred: info.SizeIsDeferred, MetaData: info.MetaData,
		IsPartial: info.IsPartial, IsFinal: info.IsFinal, PartialUploads: info.PartialUploads, Storage: info.Storage,
	}
	meta, _ := json.Marshal(st)
	err := s.Engine.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(s.infoKey(id), engine.Record{Meta: meta, Expires: s.now().Add(s.TTL)}, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &upload{s: s, id: id}, nil
}

// GetUpload returns the upload id, finishing it first if its bytes are
// all there but its finish never committed.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	if !validID(id) {
		return nil, handler.ErrNotFound
	}
	u := &upload{s: s, id: id}
	st, _, err := u.state()
	if err != nil {
		return nil, err
	}
	if s.Owns == nil || !s.Owns(ctx, st.Storage) {
		return nil, handler.ErrNotFound
	}
	if !st.Done && !st.IsPartial && !st.SizeIsDeferred && st.Offset == st.Size && (st.Size > 0 || st.IsFinal) {
		if err := u.finish(ctx); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*upload)
}

func (s *Store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload {
	return u.(*upload)
}

func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*upload)
}

type upload struct {
	s  *Store
	id string
}

// state reads the upload's state and its record.
func (u *upload) state() (state, engine.Record, error) {
	return u.decode(u.s.Engine.GetRecord(u.s.infoKey(u.id)))
}

// txState is state inside a transaction.
func (u *upload) txState(tx *engine.Tx) (state, engine.Record, error) {
	return u.decode(tx.Get(u.s.infoKey(u.id)))
}

// decode is the state in the "info" record read.
func (u *upload) decode(rec engine.Record, err error) (state, engine.Record, error) {
	if errors.Is(err, engine.ErrNotFound) {
		return state{}, rec, handler.ErrNotFound
	}
	if err != nil {
		return state{}, rec, err
	}
	var st state
	if err := json.Unmarshal(rec.Meta, &st); err != nil {
		return state{}, rec, fmt.Errorf("resumable: upload %s: %w", u.id, err)
	}
	return st, rec, nil
}

// putState writes the state back, with the record's expiry.
func (u *upload) putState(tx *engine.Tx, st state, rec engine.Record) error {
	meta, _ := json.Marshal(st)
	_, err := tx.Put(u.s.infoKey(u.id), engine.Record{Meta: meta, Expires: rec.Expires}, nil)
	return err
}

func (u *upload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	st, _, err := u.state()
	if err != nil {
		return handler.FileInfo{}, err
	}
	return handler.FileInfo{
		ID: u.id, Size: st.Size, SizeIsDeferred: st.SizeIsDeferred, Offset: st.Offset, MetaData: st.MetaData,
		IsPartial: st.IsPartial, IsFinal: st.IsFinal, PartialUploads: st.PartialUploads, Storage: st.Storage,
	}, nil
}

// Storage is the API's record of whose an upload is (FileInfo.Storage,
// set at creation); handler.ErrNotFound if there is no such upload.
func (s *Store) Storage(id string) (map[string]string, error) {
	if !validID(id) {
		return nil, handler.ErrNotFound
	}
	st, _, err := (&upload{s: s, id: id}).state()
	return st.Storage, err
}

// Result is what Finish returned for a finished upload (ok false if it
// is not finished).
func (s *Store) Result(id string) ([]byte, bool, error) {
	if !validID(id) {
		return nil, false, handler.ErrNotFound
	}
	st, _, err := (&upload{s: s, id: id}).state()
	if err != nil {
		return nil, false, err
	}
	return st.Result, st.Done, nil
}

// errStale is a PATCH at an offset that is no longer the upload's (a
// racing request moved it): tusd answers 409.
var errStale = handler.ErrMismatchOffset

// WriteChunk streams src into the engine as a part at offset. What
// arrived before a cut connection is kept (tusd ends src there).
func (u *upload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	st, _, err := u.state()
	if err != nil {
		return 0, err
	}
	if st.IsFinal {
		return 0, handler.ErrModifyFinal
	}
	if st.Done {
		return 0, handler.ErrSizeExceeded
	}
	if offset != st.Offset {
		return 0, errStale
	}
	sum, checked := ctx.Value(checksumKey{}).(checksum)
	var sha hash.Hash
	if checked && sum.algo == "sha1" {
		sha = sha1.New()
		src = io.TeeReader(src, sha)
	}
	up, err := u.s.Engine.Upload(ctx, src)
	if err != nil {
		return 0, err
	}
	defer up.Close()
	if checked {
		// tus checksum: the PATCH's bytes, all of them, or none is kept
		// (a cut one fails it too).
		id := up.ID()
		got := id[:]
		if sha != nil {
			got = sha.Sum(nil)
		}
		if !bytes.Equal(got, sum.digest) {
			return 0, ErrChecksumMismatch
		}
	}
	if up.Size() == 0 {
		return 0, nil
	}
	err = u.s.Engine.Update(ctx, func(tx *engine.Tx) error {
		st, rec, err := u.txState(tx)
		if err != nil {
			return err
		}
		if st.Offset != offset || st.Done {
			return errStale
		}
		if !st.SizeIsDeferred && offset+up.Size() > st.Size {
			return handler.ErrSizeExceeded
		}
		if _, err := tx.Put(u.s.partKey(u.id, offset), engine.Record{Expires: rec.Expires}, up); err != nil {
			return err
		}
		st.Offset += up.Size()
		return u.putState(tx, st, rec)
	})
	if err != nil {
		return 0, err
	}
	return up.Size(), nil
}

// parts lists the upload's parts in order.
func (u *upload) parts() ([]engine.Record, error) {
	var out []engine.Record
	for r, err := range u.s.Engine.Records(u.s.Namespace, u.id, "part/", "") {
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// GetReader reads the bytes received so far, in order.
func (u *upload) GetReader(ctx context.Context) (io.ReadCloser, error) {
	parts, err := u.parts()
	if err != nil {
		return nil, err
	}
	return u.s.Engine.OpenRecords(parts), nil
}

// FinishUpload finishes a complete upload (see the package doc).
func (u *upload) FinishUpload(ctx context.Context) error {
	st, _, err := u.state()
	if err != nil {
		return err
	}
	if st.Done || st.IsPartial {
		return nil
	}
	return u.finish(ctx)
}

// finish streams the parts into one upload and, in one transaction,
// has Finish make the API's record, deletes the parts and marks the
// upload done.
func (u *upload) finish(ctx context.Context) error {
	parts, err := u.parts()
	if err != nil {
		return err
	}
	up, head, err := u.s.whole(ctx, parts)
	if err != nil {
		return err
	}
	defer up.Close()
	return u.s.Engine.Update(ctx, func(tx *engine.Tx) error {
		st, rec, err := u.txState(tx)
		if err != nil {
			return err
		}
		if st.Done {
			return nil // finished meanwhile, by another request
		}
		if st.Offset != up.Size() {
			return errStale
		}
		for _, p := range parts {
			if err := tx.Delete(p.Key); err != nil {
				return fmt.Errorf("resumable: upload %s: a part went missing: %w", u.id, err)
			}
		}
		info := handler.FileInfo{
			ID: u.id, Size: st.Size, Offset: st.Offset, MetaData: st.MetaData,
			IsFinal: st.IsFinal, PartialUploads: st.PartialUploads, Storage: st.Storage,
		}
		if st.Result, err = u.s.Finish(ctx, tx, info, up, head); err != nil {
			return err
		}
		st.Done = true
		return u.putState(tx, st, rec)
	})
}

// whole is the upload of the parts' content, one after the other, and
// its first HeadSize bytes. The content of one part is the part's own,
// referenced again without reading it (engine.UploadOf: the part was
// chunked and hashed as a plain upload of the content would be); that of
// several is uploaded from them (engine.UploadParts), which does again
// only what the parts' edges change.
func (s *Store) whole(ctx context.Context, parts []engine.Record) (*engine.Upload, []byte, error) {
	var up *engine.Upload
	if len(parts) == 1 {
		u, ok, err := s.Engine.UploadOf(parts[0])
		if err != nil {
			return nil, nil, err
		}
		if ok {
			up = u
		}
	}
	if up == nil {
		u, err := s.Engine.UploadParts(ctx, parts)
		if err != nil {
			return nil, nil, err
		}
		up = u
	}
	head, err := s.head(parts)
	if err != nil {
		up.Close()
		return nil, nil, err
	}
	return up, head, nil
}

// head reads the first HeadSize bytes of the parts' content (all of a
// shorter one): of a first part that holds them, only the groups of its
// first chunk that do.
func (s *Store) head(parts []engine.Record) ([]byte, error) {
	var r io.ReadCloser
	if len(parts) > 0 && parts[0].Size >= HeadSize {
		first, err := s.Engine.OpenRecord(parts[0])
		if err != nil {
			return nil, err
		}
		first.Window(HeadSize)
		r = first
	} else {
		r = s.Engine.OpenRecords(parts)
	}
	defer r.Close()
	head := make([]byte, HeadSize)
	n, err := io.ReadFull(r, head)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("resumable: reading the content's head: %w", err)
	}
	return head[:n], nil
}

// Terminate deletes the upload and its parts (their bytes are GC's).
func (u *upload) Terminate(ctx context.Context) error {
	parts, err := u.parts()
	if err != nil {
		return err
	}
	return u.s.Engine.Update(ctx, func(tx *engine.Tx) error {
		for _, p := range parts {
			if err := tx.Delete(p.Key); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return err
			}
		}
		if err := tx.Delete(u.s.infoKey(u.id)); errors.Is(err, engine.ErrNotFound) {
			return handler.ErrNotFound
		} else if err != nil {
			return err
		}
		return nil
	})
}

// DeclareLength sets the length of an upload created without one.
func (u *upload) DeclareLength(ctx context.Context, length int64) error {
	return u.s.Engine.Update(ctx, func(tx *engine.Tx) error {
		st, rec, err := u.txState(tx)
		if err != nil {
			return err
		}
		if !st.SizeIsDeferred || length < st.Offset {
			return handler.ErrInvalidUploadLength
		}
		st.Size, st.SizeIsDeferred = length, false
		return u.putState(tx, st, rec)
	})
}

// ConcatUploads makes this (final) upload the concatenation of partial
// ones: their parts become its parts (references to the same bytes,
// nothing copied), and it is then finished as any other.
func (u *upload) ConcatUploads(ctx context.Context, partials []handler.Upload) error {
	var all []engine.Record
	for _, p := range partials {
		parts, err := p.(*upload).parts()
		if err != nil {
			return err
		}
		all = append(all, parts...)
	}
	err := u.s.Engine.Update(ctx, func(tx *engine.Tx) error {
		st, rec, err := u.txState(tx)
		if err != nil {
			return err
		}
		var off int64
		for _, p := range all {
			if _, err := tx.Put(u.s.partKey(u.id, off), engine.Record{Blob: p.Blob, Expires: rec.Expires}, nil); err != nil {
				return err
			}
			off += p.Size
		}
		st.Offset, st.Size = off, off
		return u.putState(tx, st, rec)
	})
	if err != nil {
		return err
	}
	return u.finish(ctx)
}

// Handler returns tusd's handler over the store for one API: uploads at
// basePath (their URLs, basePath+ID), at most maxSize bytes each, with
// the API's hooks (see handler.Config). tusd's own CORS handling is off
// (the server's applies) and so are its downloads (an upload is read as
// the file it makes).
func (s *Store) Handler(basePath string, maxSize int64, create func(handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error), finish func(handler.HookEvent) (handler.HTTPResponse, error)) *handler.UnroutedHandler {
	c := handler.NewStoreComposer()
	s.UseIn(c)
	h, err := handler.NewUnroutedHandler(handler.Config{
		StoreComposer: c, BasePath: basePath, MaxSize: maxSize,
		DisableDownload: true, Cors: &handler.CorsConfig{Disable: true},
		Logger:                  xslog.New(xslog.NewTextHandler(io.Discard, nil)),
		PreUploadCreateCallback: create, PreFinishResponseCallback: finish,
	})
	if err != nil {
		panic("resumable: tus handler: " + err.Error()) // a static configuration
	}
	return h
}

// Serve runs one tus request through h's method serve (h.PostFile,
// h.PatchFile, …), with tusd's middleware: tusd reads the upload's ID as
// the whole path it is given, so the path is cut to what follows strip;
// the Location it answers (an upload's URL) is made absolute on base, as
// the API's other URLs are.
func Serve(h *handler.UnroutedHandler, serve func(http.ResponseWriter, *http.Request), strip, base string, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Tus-Checksum-Algorithm", ChecksumAlgorithms)
	r, ok := withChecksum(r)
	if !ok {
		w.Header().Set("Tus-Resumable", "1.0.0")
		http.Error(w, "ERR_CHECKSUM_ALGORITHM: Upload-Checksum must be <"+ChecksumAlgorithms+"> <base64 digest>", http.StatusBadRequest)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, strip)
	r2.URL.RawPath = ""
	h.Middleware(http.HandlerFunc(serve)).ServeHTTP(&tusWriter{ResponseWriter: w, base: base}, r2)
}

// tusWriter makes tusd's Location absolute on base.
type tusWriter struct {
	http.ResponseWriter
	base string
}

func (t *tusWriter) WriteHeader(code int) {
	// tusd's upload URLs are absolute; an API's own (a finished upload's
	// file) are left as it wrote them.
	if loc := t.Header().Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.IsAbs() {
			t.Header().Set("Location", t.base+u.EscapedPath())
		}
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *tusWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// The tus checksum extension (tusd has none): a PATCH with
// Upload-Checksum: <algorithm> <base64 digest> keeps its bytes only if
// they are all there and their digest is that. sha1 is what tus
// requires; blake3 costs nothing more here (it is the part's ID).
var checksumAlgorithms = map[string]int{"sha1": sha1.Size, "blake3": 32}

// ChecksumAlgorithms is the Tus-Checksum-Algorithm header's value.
const ChecksumAlgorithms = "sha1,blake3"

// ErrChecksumMismatch: 460, the tus checksum extension's status.
var ErrChecksumMismatch = handler.NewError("ERR_CHECKSUM_MISMATCH", "the bytes do not match Upload-Checksum", 460)

type checksumKey struct{}

type checksum struct {
	algo   string
	digest []byte
}

// withChecksum reads r's Upload-Checksum into its context; false if the
// header is there but names an algorithm this store does not have, or
// does not parse (400).
func withChecksum(r *http.Request) (*http.Request, bool) {
	h := r.Header.Get("Upload-Checksum")
	if h == "" {
		return r, true
	}
	algo, b64, ok := strings.Cut(strings.TrimSpace(h), " ")
	size, known := checksumAlgorithms[algo]
	digest, err := base64.StdEncoding.DecodeString(b64)
	if !ok || !known || err != nil || len(digest) != size {
		return r, false
	}
	return r.WithContext(context.WithValue(r.Context(), checksumKey{}, checksum{algo, digest})), true
}
