package blob

import "lukechampine.com/blake3/bao"

// Verified streaming (BLAKE3's tree mode, as Bao): the outboard of a
// content is the chaining values of its hash tree above groups of
// OutboardGroup bytes, so that any group-aligned part of the content can
// be verified against the content's ID without hashing the rest. An
// outboard is about 1/256 of its content (4,040 bytes for 1 MiB).

// OutboardGroup is the group size: 16 KiB.
const OutboardGroup = 1 << (outboardLog + 10)

// outboardLog is the group size in 1 KiB BLAKE3 chunks, as a power of 2.
const outboardLog = 4

// Outboard returns the ID of b and its outboard, in one pass.
func Outboard(b []byte) (ID, []byte) {
	ob, root := bao.EncodeBuf(b, outboardLog, true)
	return ID(root), ob
}

// VerifyPart reports whether part is the content of the ID id at offset
// off, by outboard. off must be a multiple of OutboardGroup, and part
// must end at a multiple of it or at the content's end.
func VerifyPart(part, outboard []byte, off int64, id ID) bool {
	if off < 0 || off%OutboardGroup != 0 || len(part) == 0 {
		return false
	}
	return bao.VerifyChunk(part, outboard, outboardLog, uint64(off), id)
}
