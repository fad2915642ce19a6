package fsm

import (
	"bytes"
	"testing"
)

// Seeds live in testdata/fuzz/<FuzzName>/: real SYNs, data segments and
// packets with every option kind, plus a few malformed ones.

// FuzzParseSegment: ParseSegment never panics, and whatever it accepts
// re-encodes to a segment that parses back equal (except Checksum, Unknown,
// and SACK blocks or a Fast Open option that do not fit beside the other
// options in Linux's layout), with a valid checksum.
func FuzzParseSegment(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSegment(b)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %v is %T, not *ParseError", err, err)
			}
			return
		}
		_ = s.String()
		src, dst := codecV4Src, codecV4Dst
		if len(b)%2 == 1 {
			src, dst = codecV6Src, codecV6Dst
		}
		enc := AppendSegment(nil, &s, src, dst)
		if len(enc) != s.HeaderLen()+len(s.Payload) {
			t.Fatalf("encoded %d bytes, HeaderLen %d + payload %d", len(enc), s.HeaderLen(), len(s.Payload))
		}
		if !TCPChecksumValid(src, dst, enc) {
			t.Fatalf("re-encoding %x has a bad checksum", enc)
		}
		got, err := ParseSegment(enc)
		if err != nil {
			t.Fatalf("re-encoding %x does not parse: %v", enc, err)
		}
		want := s
		want.Checksum = got.Checksum
		want.Options.Unknown = 0
		if k := s.Options.sackBlocksToEncode(); k < int(s.Options.NumSACK) {
			want.Options.NumSACK = uint8(k)
			clear(want.Options.SACK[k:])
		}
		if !s.Options.FastOpenFits() {
			// A Fast Open option that does not fit beside the others in
			// Linux's layout is left out.
			want.Options.FastOpen, want.Options.FastOpenExp, want.Options.CookieLen = false, false, 0
			want.Options.Cookie = [FastOpenCookieMax]byte{}
		}
		if !segmentsEqual(got, want) {
			t.Fatalf("round trip of %x:\ngot  %+v\nwant %+v", b, got, want)
		}
	})
}

// FuzzParsePacket: ParsePacket never panics; what it accepts has its TCP
// bytes inside b, and a segment found there survives AppendPacket and
// ParsePacket again with the same addresses.
func FuzzParsePacket(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, tcp, err := ParsePacket(b)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %v is %T, not *ParseError", err, err)
			}
			return
		}
		if !codecWithin(tcp, b) {
			t.Fatalf("tcp (len %d) does not lie within b (len %d)", len(tcp), len(b))
		}
		if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
			t.Fatalf("addresses %v, %v", src, dst)
		}
		valid := TCPChecksumValid(src, dst, tcp)
		s, err := ParseSegment(tcp)
		if err != nil {
			return
		}
		pkt := AppendPacket(nil, src, dst, &s)
		src2, dst2, tcp2, err := ParsePacket(pkt)
		if err != nil {
			t.Fatalf("re-encoding %x does not parse: %v", pkt, err)
		}
		if src2 != src || dst2 != dst {
			t.Fatalf("addresses %v > %v became %v > %v", src, dst, src2, dst2)
		}
		if !TCPChecksumValid(src2, dst2, tcp2) {
			t.Fatal("re-encoded TCP checksum is invalid")
		}
		// Canonical input (Linux layout, no unknown options, zero reserved
		// bits) re-encodes to itself, so its checksum must have been valid.
		if bytes.Equal(tcp2, tcp) && !valid {
			t.Fatalf("re-encoding is identical to %x but only the re-encoding verifies", tcp)
		}
	})
}

// codecWithin reports whether sub is a subslice of b (pointer identity,
// capacity included).
func codecWithin(sub, b []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := 0; i+len(sub) <= len(b); i++ {
		if &b[i] == &sub[0] {
			return cap(sub) <= cap(b)-i
		}
	}
	return false
}
