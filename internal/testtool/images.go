package testtool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// Picture is a w×h image: its left half red, its right half blue.
func Picture(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{200, 20, 20, 255}
			if x >= w/2 {
				c = color.NRGBA{20, 20, 200, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// JPEG encodes img at quality 90.
func JPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// WithOrientation returns the JPEG j with an EXIF segment whose
// orientation tag is o, and a camera make beside it.
func WithOrientation(j []byte, o uint16) []byte {
	var ifd bytes.Buffer
	ifd.WriteString("MM\x00\x2a\x00\x00\x00\x08")
	binary.Write(&ifd, binary.BigEndian, uint16(2))
	// Make (ASCII, 4 bytes inline: "ACME") and Orientation (SHORT).
	binary.Write(&ifd, binary.BigEndian, []uint16{0x010f, 2})
	binary.Write(&ifd, binary.BigEndian, uint32(4))
	ifd.WriteString("ACM\x00")
	binary.Write(&ifd, binary.BigEndian, []uint16{0x0112, 3})
	binary.Write(&ifd, binary.BigEndian, uint32(1))
	binary.Write(&ifd, binary.BigEndian, []uint16{o, 0})
	binary.Write(&ifd, binary.BigEndian, uint32(0))
	payload := append([]byte("Exif\x00\x00"), ifd.Bytes()...)
	seg := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, j[2:]...)
}

// PNGBomb is a valid PNG header of a w×h image with no pixels after it.
func PNGBomb(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	chunk("IHDR", ihdr)
	chunk("IEND", nil)
	return b.Bytes()
}
