// Package segment implements cairn's segment files: append-only logs of
// chunk records, the only place where stored bytes live. The index (Pebble)
// says where each chunk is; the segments alone are enough to rebuild that
// (cairn reindex), because every record names its chunk.
//
// This comment is the specification of format version 1. The constants in
// format.go marked "part of the format" and this text change together, and
// the golden files in testdata/ must stay readable forever.
//
// # File
//
// A segment file is named "<id>.seg", id in 16 lower-case hex digits. It is
// a file header followed by records, back to back, with no padding:
//
//	+-------------+----------+----------+-----+----------+----------------+
//	| file header | record 0 | record 1 | ... | record n | zero bytes ... |
//	+-------------+----------+----------+-----+----------+----------------+
//	0             32
//
// All integers are little-endian. Checksums are CRC-32C (Castagnoli).
//
// # File header (32 bytes)
//
//	offset size field
//	0      8    magic "cairnSEG"
//	8      2    version, 1
//	10     2    header size, 32
//	12     4    flags, 0
//	16     8    segment id (equal to the id in the file name)
//	24     4    reserved, 0
//	28     4    CRC-32C of bytes [0, 28)
//
// A file whose first 8 bytes are not the magic is not a segment
// (ErrBadMagic); a known magic with another version is ErrUnknownVersion.
//
// # Record (52-byte header, then the payload)
//
//	offset size field
//	0      1    kind: 1 = chunk, 2 = log, 3 = void. Never 0, so zero bytes
//	            are never a record.
//	1      1    compression: 0 = raw, 1 = zstd (one frame)
//	2      2    flags, 0
//	4      4    stored length: payload bytes that follow the header
//	8      4    raw length: content bytes after decompression
//	12     32   chunk ID: BLAKE3-256 of the content (the raw bytes)
//	44     4    payload CRC: CRC-32C of the stored payload bytes
//	48     4    header CRC: CRC-32C of bytes [0, 48)
//	52     n    payload, n = stored length
//
// Lengths are at most MaxPayload (16 MiB). A raw record has stored length =
// raw length; a zstd record is only written when it is smaller.
//
// A log record (kind 2) carries an opaque payload, raw, and the BLAKE3 of
// the payload as its ID: a store whose segments are in an object store
// logs its index changes so (see the engine). A void record (kind 3) is a
// log record withdrawn before its segment became durable: the writer
// rewrote its kind, and header CRC, in place. Readers of chunks skip both.
//
// What each check covers: the header CRC makes the lengths, kind and chunk ID
// trustworthy before any of them is used (a length read from disk never sizes
// an allocation beyond MaxPayload, nor beyond the file). The payload CRC
// proves the payload was written completely, cheaply, without decompressing;
// it is what recovery relies on. The chunk ID is the end-to-end check: a
// reader decompresses and hashes the content, and only returns it when the
// BLAKE3 matches the ID the index asked for.
//
// # End of data and torn tails
//
// Writers append records in order and never rewrite one (but for voiding
// a log record that is not yet durable). The data ends at
// the first of: the end of the file; a header that is all zero bytes (space
// preallocated or zeroed by recovery); or a record that fails a check (kind,
// flags, lengths past the end of the file, header CRC, payload CRC). A crash
// can leave a partial record, or a record whose bytes were only partly made
// durable, after the last synced one: that is a torn tail. The Scanner stops
// at its offset and reports it as a *CorruptionError; recovery
// (Recover) zeroes everything from there to the end of the file and syncs,
// so that appending can continue at that offset and a later scan can never
// mistake stale bytes for records.
//
// A segment is sealed when the next record would take it past the size
// limit; it is synced a last time and never written again. Records never
// span segments.
//
// # Concurrency
//
// A Writer is safe for concurrent use: appends are serialized, and
// concurrent Sync calls share one fdatasync (group commit). A Reader and a
// Scanner read through an io.ReaderAt; a Reader is safe for concurrent use,
// a Scanner is not.
//
// # Example
//
//	w, err := segment.OpenWriter(fs, dir, 1, 0, segment.WriterOptions{})
//	loc, err := w.Append(segment.Record{ID: blob.Sum(b), Raw: uint32(len(b)), Payload: b})
//	err = w.Sync(loc.End())
//	...
//	r := segment.NewReader(f, path, segment.NewCompressor())
//	content, err := r.ReadChunk(loc.Offset, len(b), id, &scratch)
package segment
