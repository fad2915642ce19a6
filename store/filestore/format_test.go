package filestore

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// TestFrameLayout pins the byte layout doc.go describes.
func TestFrameLayout(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 11, 12, 13, 100} {
		p := payload(1, n)
		const prev = 0xdeadbeef
		f, crc := appendFrame(nil, prev, p)
		if len(f)%8 != 0 {
			t.Errorf("n=%d: frame of %d bytes is not 8-byte aligned", n, len(f))
		}
		if int64(len(f)) != frameSize(n) {
			t.Errorf("n=%d: frame %d bytes, frameSize says %d", n, len(f), frameSize(n))
		}
		word := binary.LittleEndian.Uint64(f)
		if got := int(word & lengthMask); got != n {
			t.Errorf("n=%d: length field %d", n, got)
		}
		pad := int(word >> 56)
		if pad != len(f)-frameHeaderSize-n || pad > 7 {
			t.Errorf("n=%d: pad field %d, frame has %d pad bytes", n, pad, len(f)-frameHeaderSize-n)
		}
		if word == 0 {
			t.Errorf("n=%d: zero length word", n)
		}
		want := crc32.Update(crc32.Update(prev, castagnoli, f[:8]), castagnoli, p)
		if got := binary.LittleEndian.Uint32(f[8:12]); got != want || crc != want {
			t.Errorf("n=%d: crc %08x / %08x, want %08x", n, got, crc, want)
		}
		if !bytes.Equal(f[12:12+n], p) || !allZero(f[12+n:]) {
			t.Errorf("n=%d: payload or padding wrong", n)
		}
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	b := encodeHeader(0x01020304)
	if len(b) != HeaderSize || string(b[:8]) != Magic {
		t.Fatalf("header %x", b)
	}
	h, reason := decodeHeader(b)
	if reason != "" || h.seed != 0x01020304 || h.version != Version {
		t.Fatalf("decode: %+v %q", h, reason)
	}
	for i := 0; i < HeaderSize*8; i++ {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		if _, reason := decodeHeader(c); reason == "" {
			t.Fatalf("bit %d flipped: header still accepted", i)
		}
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"5.8.0", true}, {"5.7.19", false}, {"6.1.0-13-amd64", true}, {"4.19.0", false},
		{"5.10", true}, {"5.8-rc1", true}, {"5", false}, {"x.y", false}, {"", false}, {"6.18.44-fc-v669", true},
	} {
		if got := kernelAtLeast(tc.rel, 5, 8); got != tc.want {
			t.Errorf("kernelAtLeast(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}
