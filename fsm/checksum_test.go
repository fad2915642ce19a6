package fsm

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// refChecksum is RFC 1071 §4.1 written the slow, obvious way: 16-bit words,
// odd byte padded on the right, carries folded at the end. The fast
// Checksum is tested against it.
func refChecksum(data []byte) uint16 {
	var sum uint64
	for i := 0; i+1 < len(data); i += 2 {
		sum += uint64(data[i])<<8 | uint64(data[i+1])
	}
	if len(data)%2 == 1 {
		sum += uint64(data[len(data)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// refPseudoHeader builds the pseudo-header bytes as the RFCs draw them.
func refPseudoHeader(src, dst netip.Addr, length int) []byte {
	if src.Is4() {
		// RFC 9293 §3.1: src, dst, zero, PTCL, TCP length.
		s, d := src.As4(), dst.As4()
		b := append(s[:], d[:]...)
		b = append(b, 0, protoTCP)
		return binary.BigEndian.AppendUint16(b, uint16(length))
	}
	// RFC 8200 §8.1: src, dst, upper-layer packet length (32 bits), three
	// zero bytes, next header.
	s, d := src.As16(), dst.As16()
	b := append(s[:], d[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(length))
	return append(b, 0, 0, 0, protoTCP)
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
	data := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := FoldChecksum(Checksum(data, 0)); got != ^uint16(0xddf2) {
		t.Errorf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
}

func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	// Every length up to 300 at every alignment 0..7, plus a few long ones.
	lengths := []int{1460, 1461, 4000}
	for n := range 300 {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for off := range 8 {
			data := buf[off : off+n]
			if got, want := FoldChecksum(Checksum(data, 0)), refChecksum(data); got != want {
				t.Fatalf("len %d offset %d: checksum %#04x, want %#04x", n, off, got, want)
			}
		}
	}
	// All ones exercises the end-around carries.
	ones := make([]byte, 1501)
	for i := range ones {
		ones[i] = 0xff
	}
	if got, want := FoldChecksum(Checksum(ones, 0)), refChecksum(ones); got != want {
		t.Errorf("all ones: %#04x, want %#04x", got, want)
	}
	// A running sum of 0xffffffff counts as the words ffff ffff.
	if got, want := FoldChecksum(Checksum(ones, 0xffffffff)), refChecksum(append([]byte{0xff, 0xff, 0xff, 0xff}, ones...)); got != want {
		t.Errorf("all ones after 0xffffffff: %#04x, want %#04x", got, want)
	}
}

func TestChecksumChains(t *testing.T) {
	data := make([]byte, 1001)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := FoldChecksum(Checksum(data, 0))
	// Any split at an even offset gives the same sum (RFC 1071 §2(C)).
	for _, split := range []int{0, 2, 8, 10, 32, 34, 998, 1000} {
		sum := Checksum(data[split:], Checksum(data[:split], 0))
		if got := FoldChecksum(sum); got != want {
			t.Errorf("split at %d: %#04x, want %#04x", split, got, want)
		}
	}
}

func TestFoldChecksum(t *testing.T) {
	tests := []struct {
		sum  uint32
		want uint16
	}{
		{0, 0xffff},
		{0xffff, 0},
		{0x1_0000, 0xfffe}, // carry 1 + 0
		{0x1_fffe, 0},      // 1 + 0xfffe = 0xffff
		{0xffff_ffff, 0},   // 0xffff + 0xffff = 0x1fffe -> 0xffff
		{0x0002_ddf0, ^uint16(0xddf2)},
	}
	for _, tt := range tests {
		if got := FoldChecksum(tt.sum); got != tt.want {
			t.Errorf("FoldChecksum(%#x) = %#04x, want %#04x", tt.sum, got, tt.want)
		}
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	tests := []struct {
		name     string
		src, dst netip.Addr
		length   int
	}{
		{"ipv4", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7"), 40},
		{"ipv4 max addresses", netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("255.255.255.254"), 65535},
		{"ipv4 zero", netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("0.0.0.0"), 0},
		{"ipv6", netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8:ffff::2"), 1480},
		{"ipv6 all ones", netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), 65535},
		{"ipv6 jumbo length", netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), 0x12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Sum a segment after the pseudo-header both ways; odd and even
			// payloads.
			for _, seg := range [][]byte{nil, {0xab}, {0x12, 0x34, 0x56}, make([]byte, 20)} {
				got := FoldChecksum(Checksum(seg, PseudoHeaderSum(tt.src, tt.dst, tt.length)))
				want := refChecksum(append(refPseudoHeader(tt.src, tt.dst, tt.length), seg...))
				if got != want {
					t.Errorf("seg %x: %#04x, want %#04x", seg, got, want)
				}
			}
		})
	}
}

func TestPseudoHeaderSumMappedAddresses(t *testing.T) {
	// An IPv4-mapped address adds 0xffff, zero in ones'-complement, so
	// both forms give the same checksum.
	v4s, v4d := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	m4s, m4d := netip.AddrFrom16(v4s.As16()), netip.AddrFrom16(v4d.As16())
	seg := []byte("some segment bytes")
	a := FoldChecksum(Checksum(seg, PseudoHeaderSum(v4s, v4d, len(seg))))
	b := FoldChecksum(Checksum(seg, PseudoHeaderSum(m4s, m4d, len(seg))))
	if a != b {
		t.Errorf("unmapped %#04x != mapped %#04x", a, b)
	}
	if want := refChecksum(append(refPseudoHeader(m4s, m4d, len(seg)), seg...)); b != want {
		t.Errorf("mapped %#04x, want IPv6 pseudo-header checksum %#04x", b, want)
	}
}

func TestTCPChecksumValid(t *testing.T) {
	v4s, v4d := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6s, v6d := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	tests := []struct {
		name     string
		src, dst netip.Addr
		payload  string
	}{
		{"ipv4 empty", v4s, v4d, ""},
		{"ipv4 odd", v4s, v4d, "hello"},
		{"ipv4 even", v4s, v4d, "hello!"},
		{"ipv6 empty", v6s, v6d, ""},
		{"ipv6 odd", v6s, v6d, "hello"},
		{"ipv6 even", v6s, v6d, "hello!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Segment{SrcPort: 1, DstPort: 2, Seq: 100, Ack: 200, Flags: FlagACK | FlagPSH, Window: 1000,
				Options: Options{HasTimestamp: true, TSVal: 5, TSEcr: 6}, Payload: []byte(tt.payload)}
			b := AppendSegment(nil, &s, tt.src, tt.dst)
			if !TCPChecksumValid(tt.src, tt.dst, b) {
				t.Fatalf("own encoding %x does not verify", b)
			}
			// Recompute the field with the reference and compare.
			c := binary.BigEndian.Uint16(b[tcpChecksum:])
			zeroed := append([]byte(nil), b...)
			zeroed[tcpChecksum], zeroed[tcpChecksum+1] = 0, 0
			if want := refChecksum(append(refPseudoHeader(tt.src, tt.dst, len(b)), zeroed...)); c != want {
				t.Errorf("checksum field %#04x, reference %#04x", c, want)
			}
			// Any single bit flip is caught.
			for i := range len(b) * 8 {
				b[i/8] ^= 1 << (i % 8)
				if TCPChecksumValid(tt.src, tt.dst, b) {
					t.Fatalf("bit %d flipped still verifies", i)
				}
				b[i/8] ^= 1 << (i % 8)
			}
			// The wrong addresses fail.
			if TCPChecksumValid(tt.dst, netip.MustParseAddr("192.0.2.99"), b) {
				t.Error("verifies under the wrong addresses")
			}
		})
	}
}

func BenchmarkChecksum1460(b *testing.B) {
	data := make([]byte, 1460)
	for i := range data {
		data[i] = byte(i)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var sum uint32
	for b.Loop() {
		sum = Checksum(data, sum)
	}
	_ = sum
}
