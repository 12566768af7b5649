package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cairnstore/cairn/internal/blob"
)

// Format constants: part of the format; never change.
const (
	// Magic begins every segment file.
	Magic = "cairnSEG"
	// Version is the format version this package writes.
	Version = 1
	// FileHeaderSize is the size of the file header.
	FileHeaderSize = 32
	// RecordHeaderSize is the size of a record header.
	RecordHeaderSize = 52
	// MaxPayload bounds a record's stored and raw lengths.
	MaxPayload = 16 << 20
	// KindChunk marks a chunk record. Kind 0 is never written.
	KindChunk = 1
	// KindLog marks a log record: an opaque payload (a store in object
	// mode logs its index changes so), raw, whose ID is the BLAKE3 of the
	// payload. Readers of chunks skip it.
	KindLog = 2
	// KindVoid marks a log record that was withdrawn before its segment
	// became durable; readers skip it.
	KindVoid = 3
)

// Compression says how a record's payload encodes its content. The values
// are part of the format; never change.
type Compression uint8

const (
	// Raw payloads are the content itself.
	Raw Compression = 0
	// Zstd payloads are one zstd frame that decodes to the content.
	Zstd Compression = 1
)

func (c Compression) String() string {
	switch c {
	case Raw:
		return "raw"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Errors. Callers branch on these with errors.Is.
var (
	// ErrCorrupt matches every *CorruptionError: bytes on disk that fail a
	// check of the format.
	ErrCorrupt = errors.New("segment: corrupt")
	// ErrBadMagic reports a file that does not begin with Magic; such an
	// error also matches ErrCorrupt.
	ErrBadMagic = errors.New("segment: bad magic")
	// ErrUnknownVersion reports a segment of a format version this build
	// cannot read (written by a newer cairn).
	ErrUnknownVersion = errors.New("segment: unknown format version")
	// ErrClosed reports use of a closed Writer.
	ErrClosed = errors.New("segment: writer closed")
	// ErrNoSpace reports that the file system is full. It is not sticky:
	// nothing was written, and appending works again once space is freed.
	ErrNoSpace = errors.New("segment: no space left on device")
	// ErrTooLarge reports a record above MaxPayload.
	ErrTooLarge = errors.New("segment: record too large")
)

// CorruptionError describes bytes on disk that fail a check.
type CorruptionError struct {
	Path   string // file, when known
	Offset int64  // of the record (or header) that failed
	Reason string
	Err    error // a more specific sentinel, such as ErrBadMagic, or nil
}

func (e *CorruptionError) Error() string {
	s := fmt.Sprintf("segment: corrupt data in %s at offset %d: %s", e.Path, e.Offset, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes every CorruptionError match ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the specific sentinel, if any.
func (e *CorruptionError) Unwrap() error { return e.Err }

// FileName is the name of segment id's file.
func FileName(id uint64) string { return fmt.Sprintf("%016x.seg", id) }

// ParseFileName returns the id of a segment file name.
func ParseFileName(name string) (uint64, bool) {
	var id uint64
	if len(name) != 20 || name[16:] != ".seg" {
		return 0, false
	}
	for _, c := range name[:16] {
		switch {
		case c >= '0' && c <= '9':
			id = id<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			id = id<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return id, id != 0
}

// FileHeader is the decoded file header.
type FileHeader struct {
	Version uint16
	Segment uint64
}

// AppendFileHeader appends the header of segment id to dst.
func AppendFileHeader(dst []byte, id uint64) []byte {
	var b [FileHeaderSize]byte
	copy(b[0:8], Magic)
	binary.LittleEndian.PutUint16(b[8:], Version)
	binary.LittleEndian.PutUint16(b[10:], FileHeaderSize)
	binary.LittleEndian.PutUint64(b[16:], id)
	binary.LittleEndian.PutUint32(b[28:], checksum(b[:28]))
	return append(dst, b[:]...)
}

// ParseFileHeader decodes and checks a file header.
func ParseFileHeader(b []byte, path string) (FileHeader, error) {
	corrupt := func(reason string, err error) (FileHeader, error) {
		return FileHeader{}, &CorruptionError{Path: path, Offset: 0, Reason: reason, Err: err}
	}
	if len(b) < FileHeaderSize {
		if len(b) >= len(Magic) && string(b[:len(Magic)]) != Magic {
			return corrupt("file header", ErrBadMagic)
		}
		return corrupt(fmt.Sprintf("file is %d bytes, shorter than its header", len(b)), nil)
	}
	if string(b[:8]) != Magic {
		return corrupt("file header", ErrBadMagic)
	}
	h := FileHeader{
		Version: binary.LittleEndian.Uint16(b[8:]),
		Segment: binary.LittleEndian.Uint64(b[16:]),
	}
	if h.Version != Version {
		return FileHeader{}, fmt.Errorf("%w: %s has version %d, this build reads %d", ErrUnknownVersion, path, h.Version, Version)
	}
	if got, want := binary.LittleEndian.Uint32(b[28:]), checksum(b[:28]); got != want {
		return corrupt(fmt.Sprintf("file header checksum %08x, want %08x", got, want), nil)
	}
	if size := binary.LittleEndian.Uint16(b[10:]); size != FileHeaderSize {
		return corrupt(fmt.Sprintf("file header size %d", size), nil)
	}
	if binary.LittleEndian.Uint32(b[12:]) != 0 || binary.LittleEndian.Uint32(b[24:]) != 0 {
		return corrupt("reserved file header bytes are not zero", nil)
	}
	return h, nil
}

// Header is a decoded record header.
type Header struct {
	Kind        uint8
	Compression Compression
	Stored      uint32  // payload bytes
	Raw         uint32  // content bytes
	ID          blob.ID // BLAKE3-256 of the content
	PayloadCRC  uint32
}

// Size is the record's total size on disk.
func (h Header) Size() int64 { return RecordHeaderSize + int64(h.Stored) }

// encode writes h, with its header CRC, into b[:RecordHeaderSize].
func (h Header) encode(b []byte) {
	_ = b[RecordHeaderSize-1]
	b[0] = h.Kind
	b[1] = byte(h.Compression)
	b[2], b[3] = 0, 0
	binary.LittleEndian.PutUint32(b[4:], h.Stored)
	binary.LittleEndian.PutUint32(b[8:], h.Raw)
	copy(b[12:44], h.ID[:])
	binary.LittleEndian.PutUint32(b[44:], h.PayloadCRC)
	binary.LittleEndian.PutUint32(b[48:], checksum(b[:48]))
}

// decodeHeader checks and decodes a record header; the error is a reason
// for a CorruptionError.
func decodeHeader(b []byte) (Header, string) {
	if len(b) < RecordHeaderSize {
		return Header{}, "short record header"
	}
	if got, want := binary.LittleEndian.Uint32(b[48:]), checksum(b[:48]); got != want {
		return Header{}, fmt.Sprintf("record header checksum %08x, want %08x", got, want)
	}
	h := Header{
		Kind:        b[0],
		Compression: Compression(b[1]),
		Stored:      binary.LittleEndian.Uint32(b[4:]),
		Raw:         binary.LittleEndian.Uint32(b[8:]),
		ID:          blob.ID(b[12:44]),
		PayloadCRC:  binary.LittleEndian.Uint32(b[44:]),
	}
	switch {
	case h.Kind != KindChunk && h.Kind != KindLog && h.Kind != KindVoid:
		return Header{}, fmt.Sprintf("unknown record kind %d", h.Kind)
	case h.Kind != KindChunk && h.Compression != Raw:
		return Header{}, fmt.Sprintf("record of kind %d compressed", h.Kind)
	case b[2] != 0 || b[3] != 0:
		return Header{}, "record flags are not zero"
	case h.Stored > MaxPayload || h.Raw > MaxPayload:
		return Header{}, fmt.Sprintf("record lengths %d/%d above the maximum %d", h.Stored, h.Raw, MaxPayload)
	case h.Compression == Raw && h.Stored != h.Raw:
		return Header{}, fmt.Sprintf("raw record with stored length %d ≠ raw length %d", h.Stored, h.Raw)
	case h.Compression != Raw && h.Compression != Zstd:
		return Header{}, fmt.Sprintf("unknown compression %d", h.Compression)
	}
	return h, ""
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
