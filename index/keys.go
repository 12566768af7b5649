package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cairnstore/cairn/internal/blob"
)

// Key prefixes: part of the index format; never change. Every key begins
// with one of these bytes; each has a scan bound (prefix+1).
const (
	// prefixMeta + name → value: format version, chunker parameters, totals.
	prefixMeta byte = 'M'
	// prefixBlob + blob ID → Blob.
	prefixBlob byte = 'b'
	// prefixChunk + chunk ID → Chunk.
	prefixChunk byte = 'c'
	// prefixRecord + esc(namespace) + esc(tenant) + name → Record.
	prefixRecord byte = 'r'
	// prefixSegment + be64(id) + field → segment figures (see segField*).
	prefixSegment byte = 's'
	// prefixExpiry + be64(expiry) + record key → empty.
	prefixExpiry byte = 'x'
	// prefixZero + kind + ID → be64(since): a blob or chunk with no
	// references, waiting for garbage collection.
	prefixZero byte = 'z'
	// prefixInline + chunk ID → Inline: the payload of a small chunk kept
	// in the index instead of a segment (its Location's Segment is 0).
	prefixInline byte = 'i'
	// prefixOutboard + chunk ID → the chunk's outboard (blob.Outboard):
	// optional, derived from the chunk, verified on every use.
	prefixOutboard byte = 'o'
)

// Segment fields: the byte after a segment key's id.
const (
	segFieldEnd    byte = 'e' // merge max: synced end committed with chunk locations
	segFieldLive   byte = 'l' // merge sum: live bytes, live chunks
	segFieldSealed byte = 'z' // set: sealed size
	// set: when sealed, in Unix nanoseconds (an index several nodes share)
	segFieldSealedAt byte = 't'
)

// ZeroKind says what a zero-reference entry is about.
type ZeroKind byte

// Zero kinds: part of the format.
const (
	ZeroBlob  ZeroKind = 'b'
	ZeroChunk ZeroKind = 'c'
)

// Meta names.
const (
	metaFormat = "format"
	metaTotals = "totals"
)

// FormatVersion is the index format this build writes and reads.
const FormatVersion = 1

// ErrCorrupt reports index bytes that do not decode: a value, or a key
// under a known prefix.
var ErrCorrupt = errors.New("index: corrupt")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func idKey(prefix byte, id blob.ID) []byte {
	k := make([]byte, 1+blob.Size)
	k[0] = prefix
	copy(k[1:], id[:])
	return k
}

// ChunkKey is the key of a chunk's entry.
func ChunkKey(id blob.ID) []byte { return idKey(prefixChunk, id) }

// BlobKey is the key of a blob's entry.
func BlobKey(id blob.ID) []byte { return idKey(prefixBlob, id) }

func parseIDKey(prefix byte, k []byte) (blob.ID, error) {
	if len(k) != 1+blob.Size || k[0] != prefix {
		return blob.ID{}, corruptf("key %q is not a %c key", k, prefix)
	}
	return blob.ID(k[1:]), nil
}

// RecordKey names a record: the API's namespace, the tenant (bucket, owner,
// account) and the record's name within it. Every lookup is scoped by the
// first two, so records of one tenant are never seen through another.
type RecordKey struct {
	Namespace string
	Tenant    string
	Name      string
}

func (k RecordKey) String() string { return fmt.Sprintf("%s/%s/%s", k.Namespace, k.Tenant, k.Name) }

// Compare orders keys by namespace, tenant, then name, bytewise; the
// encoding preserves this order.
func (k RecordKey) Compare(o RecordKey) int {
	if c := compareStrings(k.Namespace, o.Namespace); c != 0 {
		return c
	}
	if c := compareStrings(k.Tenant, o.Tenant); c != 0 {
		return c
	}
	return compareStrings(k.Name, o.Name)
}

func compareStrings(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }

// Escaping for the components before the name: 0x00 becomes 0x00 0xFF and
// each component ends with 0x00 0x01, which keeps the tuple order (a
// component that is a prefix of another sorts first).
const (
	escByte   = 0x00
	escEscape = 0xFF
	escEnd    = 0x01
)

func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == escByte {
			dst = append(dst, escByte, escEscape)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, escByte, escEnd)
}

func readEscaped(b []byte) (string, []byte, error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != escByte {
			out = append(out, b[i])
			continue
		}
		if i+1 == len(b) {
			return "", nil, corruptf("escaped component ends after 0x00")
		}
		switch b[i+1] {
		case escEscape:
			out = append(out, escByte)
			i++
		case escEnd:
			return string(out), b[i+2:], nil
		default:
			return "", nil, corruptf("bad escape 0x00 %#x", b[i+1])
		}
	}
	return "", nil, corruptf("escaped component without terminator")
}

// EncodeRecordKey returns the index key of k.
func EncodeRecordKey(k RecordKey) []byte {
	b := make([]byte, 0, 1+len(k.Namespace)+len(k.Tenant)+len(k.Name)+4)
	b = append(b, prefixRecord)
	b = appendEscaped(b, k.Namespace)
	b = appendEscaped(b, k.Tenant)
	return append(b, k.Name...)
}

// DecodeRecordKey parses an index key made by EncodeRecordKey.
func DecodeRecordKey(b []byte) (RecordKey, error) {
	if len(b) == 0 || b[0] != prefixRecord {
		return RecordKey{}, corruptf("key %q is not a record key", b)
	}
	ns, rest, err := readEscaped(b[1:])
	if err != nil {
		return RecordKey{}, err
	}
	tenant, rest, err := readEscaped(rest)
	if err != nil {
		return RecordKey{}, err
	}
	return RecordKey{Namespace: ns, Tenant: tenant, Name: string(rest)}, nil
}

// recordPrefix is the key prefix of the records of (namespace, tenant)
// whose names begin with namePrefix.
func recordPrefix(namespace, tenant, namePrefix string) []byte {
	return EncodeRecordKey(RecordKey{namespace, tenant, namePrefix})
}

// orderedTime maps a signed time to an unsigned one with the same order.
func orderedTime(t int64) uint64 { return uint64(t) ^ (1 << 63) }

// ExpiryKey is the key of k's entry in the expiry index, ordered by time.
func ExpiryKey(at int64, k RecordKey) []byte {
	rk := EncodeRecordKey(k)
	b := make([]byte, 9, 9+len(rk))
	b[0] = prefixExpiry
	binary.BigEndian.PutUint64(b[1:], orderedTime(at))
	return append(b, rk...)
}

// DecodeExpiryKey parses an ExpiryKey.
func DecodeExpiryKey(b []byte) (int64, RecordKey, error) {
	if len(b) < 10 || b[0] != prefixExpiry {
		return 0, RecordKey{}, corruptf("key %q is not an expiry key", b)
	}
	at := int64(binary.BigEndian.Uint64(b[1:9]) ^ (1 << 63))
	k, err := DecodeRecordKey(b[9:])
	return at, k, err
}

func segmentKey(id uint64, field byte) []byte {
	b := make([]byte, 10)
	b[0] = prefixSegment
	binary.BigEndian.PutUint64(b[1:], id)
	b[9] = field
	return b
}

func parseSegmentKey(b []byte) (uint64, byte, error) {
	if len(b) != 10 || b[0] != prefixSegment {
		return 0, 0, corruptf("key %q is not a segment key", b)
	}
	return binary.BigEndian.Uint64(b[1:9]), b[9], nil
}

func zeroKey(kind ZeroKind, id blob.ID) []byte {
	b := make([]byte, 2+blob.Size)
	b[0], b[1] = prefixZero, byte(kind)
	copy(b[2:], id[:])
	return b
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// Location is where a chunk's record is: the segment, the record's offset,
// its payload's stored length, the content length, and the compression.
// Segment 0 (no segment has that ID) is a chunk stored inline: its payload
// is the index's Inline entry of the chunk ID, and Offset is 0.
type Location struct {
	Segment     uint64
	Offset      int64
	Stored      uint32
	Raw         uint32
	Compression uint8
}

// Inline reports whether the chunk's payload is kept in the index.
func (l Location) Inline() bool { return l.Segment == 0 }

// OutboardKey is the key of a chunk's outboard.
func OutboardKey(id blob.ID) []byte { return idKey(prefixOutboard, id) }

// InlineKey is the key of a chunk's inline payload.
func InlineKey(id blob.ID) []byte { return idKey(prefixInline, id) }

// Inline is a small chunk's payload kept in the index, described as a
// segment record describes its own, so that it can be verified and
// indexed again from itself alone.
type Inline struct {
	Compression uint8
	Raw         uint32
	Payload     []byte
}

// EncodeInline encodes an inline payload.
func EncodeInline(v Inline) []byte {
	b := make([]byte, 0, 8+len(v.Payload))
	b = append(b, valueV1, v.Compression)
	b = binary.AppendUvarint(b, uint64(v.Raw))
	return append(b, v.Payload...)
}

// DecodeInline decodes an inline payload; Payload aliases b.
func DecodeInline(b []byte) (Inline, error) {
	d := decoder{b: b}
	d.version("inline chunk")
	var v Inline
	v.Compression = d.byte()
	v.Raw = d.uint32()
	if d.err != nil {
		return Inline{}, d.err
	}
	v.Payload = d.b
	return v, nil
}

// Chunk is a chunk's index entry: its location and how many blob chunk
// lists name it (a blob naming it twice counts twice).
type Chunk struct {
	Location
	Refs uint64
}

// Value encodings. Each begins with an encoding version byte, so a field
// can be added without rewriting the index.
const valueV1 = 1

// EncodeChunk encodes a chunk entry.
func EncodeChunk(c Chunk) []byte {
	b := []byte{valueV1}
	b = binary.AppendUvarint(b, c.Segment)
	b = binary.AppendUvarint(b, uint64(c.Offset))
	b = binary.AppendUvarint(b, uint64(c.Stored))
	b = binary.AppendUvarint(b, uint64(c.Raw))
	b = append(b, c.Compression)
	return binary.AppendUvarint(b, c.Refs)
}

// DecodeChunk decodes a chunk entry.
func DecodeChunk(b []byte) (Chunk, error) {
	d := decoder{b: b}
	d.version("chunk")
	var c Chunk
	c.Segment = d.uvarint()
	c.Offset = d.int63()
	c.Stored = d.uint32()
	c.Raw = d.uint32()
	c.Compression = d.byte()
	c.Refs = d.uvarint()
	return c, d.finish("chunk")
}

// ChunkRef is one entry of a blob's chunk list.
type ChunkRef struct {
	ID   blob.ID
	Size uint32 // content bytes
}

// Blob is a blob's index entry.
type Blob struct {
	Size int64
	// Refs counts the records that refer to the blob.
	Refs uint64
	// Created is when the blob was first stored, in Unix nanoseconds.
	Created int64
	// Chunks lists the blob's content in order.
	Chunks []ChunkRef
}

// EncodeBlob encodes a blob entry.
func EncodeBlob(v Blob) []byte {
	b := make([]byte, 0, 24+len(v.Chunks)*(blob.Size+3))
	b = append(b, valueV1)
	b = binary.AppendUvarint(b, uint64(v.Size))
	b = binary.AppendUvarint(b, v.Refs)
	b = binary.AppendVarint(b, v.Created)
	b = binary.AppendUvarint(b, uint64(len(v.Chunks)))
	for _, c := range v.Chunks {
		b = append(b, c.ID[:]...)
		b = binary.AppendUvarint(b, uint64(c.Size))
	}
	return b
}

// DecodeBlob decodes a blob entry. A chunk count read from the value never
// sizes an allocation beyond what the value's length allows.
func DecodeBlob(b []byte) (Blob, error) {
	d := decoder{b: b}
	d.version("blob")
	var v Blob
	v.Size = d.int63()
	v.Refs = d.uvarint()
	v.Created = d.varint()
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b))/(blob.Size+1) {
		return Blob{}, corruptf("blob lists %d chunks in %d bytes", n, len(d.b))
	}
	if n > 0 {
		v.Chunks = make([]ChunkRef, n)
	}
	for i := range v.Chunks {
		copy(v.Chunks[i].ID[:], d.bytes(blob.Size))
		v.Chunks[i].Size = d.uint32()
	}
	return v, d.finish("blob")
}

// Record is a record's index entry: what an API stored under a name.
type Record struct {
	// Blob is the content, or the zero ID for a record without bytes.
	Blob        blob.ID
	Size        int64
	ContentType string
	// Meta is the API's own metadata, opaque to the engine.
	Meta []byte
	// Created, Modified and Expires are Unix nanoseconds; Expires 0 means
	// never.
	Created, Modified, Expires int64
	// Version counts the writes of this name: 1 for the first.
	Version uint64
}

// EncodeRecord encodes a record entry.
func EncodeRecord(r Record) []byte {
	b := make([]byte, 0, 64+len(r.ContentType)+len(r.Meta))
	b = append(b, valueV1)
	b = append(b, r.Blob[:]...)
	b = binary.AppendUvarint(b, uint64(r.Size))
	b = appendString(b, r.ContentType)
	b = appendString(b, string(r.Meta))
	b = binary.AppendVarint(b, r.Created)
	b = binary.AppendVarint(b, r.Modified)
	b = binary.AppendVarint(b, r.Expires)
	return binary.AppendUvarint(b, r.Version)
}

// DecodeRecord decodes a record entry.
func DecodeRecord(b []byte) (Record, error) {
	d := decoder{b: b}
	d.version("record")
	var r Record
	copy(r.Blob[:], d.bytes(blob.Size))
	r.Size = d.int63()
	r.ContentType = string(d.lenBytes())
	if m := d.lenBytes(); len(m) > 0 {
		r.Meta = bytes.Clone(m)
	}
	r.Created = d.varint()
	r.Modified = d.varint()
	r.Expires = d.varint()
	r.Version = d.uvarint()
	return r, d.finish("record")
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeBE64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeBE64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, corruptf("%d-byte value, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// decoder reads a value, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = corruptf(format, args...)
	}
}

func (d *decoder) version(what string) {
	if v := d.byte(); d.err == nil && v != valueV1 {
		d.fail("%s value version %d", what, v)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("value too short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("value too short")
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) lenBytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("length %d past the end of the value", n)
	}
	if d.err != nil {
		return nil
	}
	return d.bytes(int(n))
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		// A minimal encoding never ends in a zero byte: each value has
		// exactly one encoding, so equal values are equal bytes.
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int63() int64 {
	v := d.uvarint()
	if v > math.MaxInt64 {
		d.fail("value %d out of range", v)
		return 0
	}
	return int64(v)
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("value %d out of range", v)
		return 0
	}
	return uint32(v)
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes in %s value", len(d.b), what)
	}
	if d.err != nil {
		return fmt.Errorf("%s value: %w", what, d.err)
	}
	return nil
}
