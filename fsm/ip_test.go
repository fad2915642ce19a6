package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// codecFixIPv4Sum recomputes the IPv4 header checksum after a test edits
// the header.
func codecFixIPv4Sum(b []byte) {
	hl := int(b[0]&0x0f) * 4
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], FoldChecksum(Checksum(b[:hl], 0)))
}

// codecIPv6WithExt rebuilds codecDataV6Hex with extension headers between
// the fixed header and TCP; each ext is a complete header whose first byte
// (next header) is patched to chain to the following one.
func codecIPv6WithExt(t testing.TB, kinds []byte, exts ...[]byte) []byte {
	t.Helper()
	base := codecHex(t, codecDataV6Hex)
	tcp := base[40:]
	out := append([]byte(nil), base[:40]...)
	out[6] = kinds[0]
	for i, e := range exts {
		e = append([]byte(nil), e...)
		if i+1 < len(kinds) {
			e[0] = kinds[i+1]
		} else {
			e[0] = protoTCP
		}
		out = append(out, e...)
	}
	out = append(out, tcp...)
	binary.BigEndian.PutUint16(out[4:], uint16(len(out)-40))
	return out
}

func TestParsePacketKnownGood(t *testing.T) {
	tests := []struct {
		name     string
		packet   string
		src, dst netip.Addr
		ipHdr    int
	}{
		{"ipv4", codecSYNv4Hex, codecV4Src, codecV4Dst, 20},
		{"ipv6", codecDataV6Hex, codecV6Src, codecV6Dst, 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := codecHex(t, tt.packet)
			src, dst, tcp, err := ParsePacket(b)
			if err != nil {
				t.Fatal(err)
			}
			if src != tt.src || dst != tt.dst {
				t.Errorf("addresses %v > %v, want %v > %v", src, dst, tt.src, tt.dst)
			}
			if &tcp[0] != &b[tt.ipHdr] || len(tcp) != len(b)-tt.ipHdr || cap(tcp) != len(tcp) {
				t.Errorf("tcp is not b[%d:] with capped capacity (len %d cap %d)", tt.ipHdr, len(tcp), cap(tcp))
			}
			if !TCPChecksumValid(src, dst, tcp) {
				t.Error("TCP checksum does not verify")
			}
		})
	}
}

func TestAppendPacketKnownGood(t *testing.T) {
	tests := []struct {
		name     string
		packet   string
		src, dst netip.Addr
		seg      Segment
	}{
		{"ipv4 SYN", codecSYNv4Hex, codecV4Src, codecV4Dst, codecSYN()},
		{"ipv6 data", codecDataV6Hex, codecV6Src, codecV6Dst, codecData()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := codecHex(t, tt.packet)
			got := AppendPacket([]byte{1, 2, 3}, tt.src, tt.dst, &tt.seg)
			if !bytes.Equal(got[:3], []byte{1, 2, 3}) || !bytes.Equal(got[3:], want) {
				t.Errorf("got  %x\nwant 010203%x", got, want)
			}
			if n := PacketLen(tt.src, &tt.seg); n != len(want) {
				t.Errorf("PacketLen = %d, want %d", n, len(want))
			}
		})
	}
}

func TestParsePacketErrors(t *testing.T) {
	v4 := func(edit func(b []byte) []byte) []byte { return edit(codecHex(t, codecSYNv4Hex)) }
	v6 := func(edit func(b []byte) []byte) []byte { return edit(codecHex(t, codecDataV6Hex)) }
	fix := func(b []byte) []byte { codecFixIPv4Sum(b); return b }
	hopByHop := []byte{0, 0, 1, 4, 0, 0, 0, 0} // next header, len 0 (8 bytes), PadN

	tests := []struct {
		name         string
		b            []byte
		layer, field string
		reasons      []string
	}{
		{"empty", nil, "ip", "version", []string{"empty"}},
		{"version 5", v4(func(b []byte) []byte { b[0] = 0x55; return b }), "ip", "version", []string{"version 5"}},
		{"version 0", []byte{0x00}, "ip", "version", []string{"version 0"}},

		{"ipv4 19 bytes", v4(func(b []byte) []byte { return b[:19] }), "ipv4", "header length", []string{"19 bytes", "20-byte"}},
		{"ipv4 ihl 4", v4(func(b []byte) []byte { b[0] = 0x44; return fix(b) }), "ipv4", "ihl", []string{"4 words (16 bytes)"}},
		{"ipv4 ihl past buffer", v4(func(b []byte) []byte { b[0] = 0x48; return b[:30] }), "ipv4", "ihl", []string{"8 words (32 bytes)", "30-byte"}},
		{"ipv4 total length below header", v4(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 19); return fix(b) }),
			"ipv4", "total length", []string{"says 19 bytes but the packet has 60"}},
		{"ipv4 total length past buffer", v4(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 61); return fix(b) }),
			"ipv4", "total length", []string{"says 61 bytes but the packet has 60"}},
		{"ipv4 header checksum", v4(func(b []byte) []byte { b[11]++; return b }), "ipv4", "header checksum", []string{"0xb6b9", "want 0xb6b8"}},
		{"ipv4 corrupt ttl", v4(func(b []byte) []byte { b[8]--; return b }), "ipv4", "header checksum", []string{"0xb6b8"}},
		{"ipv4 more fragments", v4(func(b []byte) []byte { b[6] |= 0x20; return fix(b) }), "ipv4", "fragment", []string{"MF true", "offset 0"}},
		{"ipv4 fragment offset", v4(func(b []byte) []byte { b[6], b[7] = 0, 3; return fix(b) }), "ipv4", "fragment", []string{"MF false", "offset 24 bytes"}},
		{"ipv4 udp", v4(func(b []byte) []byte { b[9] = 17; return fix(b) }), "ipv4", "protocol", []string{"protocol 17"}},

		{"ipv6 39 bytes", v6(func(b []byte) []byte { return b[:39] }), "ipv6", "header length", []string{"39 bytes", "40-byte"}},
		{"ipv6 payload length past buffer", v6(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 38); return b }),
			"ipv6", "payload length", []string{"says 38 bytes but the packet has 37"}},
		{"ipv6 udp", v6(func(b []byte) []byte { b[6] = 17; return b }), "ipv6", "next header", []string{"next header 17", "offset 40"}},
		{"ipv6 no next header", codecIPv6WithExt(t, []byte{0, 59}, hopByHop), "ipv6", "next header", []string{"next header 59", "offset 48"}},
		{"ipv6 fragment header", codecIPv6WithExt(t, []byte{0, 44}, hopByHop, []byte{6, 0, 0, 1, 0, 0, 0, 1}),
			"ipv6", "fragment", []string{"offset 48"}},
		{"ipv6 extension header without length byte", v6(func(b []byte) []byte {
			b[6] = 60
			binary.BigEndian.PutUint16(b[4:], 1)
			return b[:41]
		}), "ipv6", "extension header", []string{"header 60 at offset 40", "41-byte"}},
		{"ipv6 extension header past payload", v6(func(b []byte) []byte {
			b[6] = 43
			b[41] = 10 // 88 bytes, the payload is 37
			return b
		}), "ipv6", "extension header", []string{"header 43 at offset 40 is 88 bytes", "77-byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst, tcp, err := ParsePacket(tt.b)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Layer != tt.layer || pe.Field != tt.field {
				t.Errorf("got %q/%q, want %q/%q (%v)", pe.Layer, pe.Field, tt.layer, tt.field, err)
			}
			for _, r := range tt.reasons {
				if !strings.Contains(pe.Reason, r) {
					t.Errorf("reason %q lacks %q", pe.Reason, r)
				}
			}
			if src.IsValid() || dst.IsValid() || tcp != nil {
				t.Errorf("results on error: %v %v %x", src, dst, tcp)
			}
		})
	}
}

func TestParsePacketAccepts(t *testing.T) {
	synTCP := codecHex(t, codecSYNv4Hex)[20:]
	dataTCP := codecHex(t, codecDataV6Hex)[40:]
	tests := []struct {
		name string
		b    []byte
		tcp  []byte
	}{
		{"ipv4 link padding ignored", append(codecHex(t, codecSYNv4Hex), 0, 0, 0, 0, 0, 0), synTCP},
		{"ipv4 DF is fine", codecHex(t, codecSYNv4Hex), synTCP},
		{"ipv4 options skipped", func() []byte {
			b := codecHex(t, codecSYNv4Hex)
			out := append(append(append([]byte(nil), b[:20]...), 1, 1, 1, 0), b[20:]...) // NOP NOP NOP EOL
			out[0] = 0x46
			binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
			codecFixIPv4Sum(out)
			return out
		}(), synTCP},
		{"ipv4 total length shorter truncates", func() []byte {
			b := codecHex(t, codecSYNv4Hex)
			binary.BigEndian.PutUint16(b[2:], 40)
			codecFixIPv4Sum(b)
			return b
		}(), synTCP[:20]},
		{"ipv6 trailing bytes ignored", append(codecHex(t, codecDataV6Hex), 9, 9, 9), dataTCP},
		{"ipv6 shorter payload length truncates", func() []byte {
			b := codecHex(t, codecDataV6Hex)
			binary.BigEndian.PutUint16(b[4:], 20)
			return b
		}(), dataTCP[:20]},
		{"ipv6 extension headers skipped", codecIPv6WithExt(t, []byte{0, 43, 60},
			[]byte{0, 0, 1, 4, 0, 0, 0, 0},
			[]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // routing, 16 bytes
			[]byte{0, 0, 1, 4, 0, 0, 0, 0}), dataTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, tcp, err := ParsePacket(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tcp, tt.tcp) {
				t.Errorf("tcp %x\nwant %x", tcp, tt.tcp)
			}
		})
	}
}

func TestAppendPacketRoundTrip(t *testing.T) {
	mapped := netip.AddrFrom16(codecV4Src.As16())
	tests := []struct {
		name       string
		src, dst   netip.Addr
		wantSrc    netip.Addr
		wantDst    netip.Addr
		wantHeader int
	}{
		{"ipv4", codecV4Src, codecV4Dst, codecV4Src, codecV4Dst, 20},
		{"ipv6", codecV6Src, codecV6Dst, codecV6Src, codecV6Dst, 40},
		{"ipv4-mapped source is sent as ipv6", mapped, netip.AddrFrom16(codecV4Dst.As16()), mapped, netip.AddrFrom16(codecV4Dst.As16()), 40},
		{"ipv4 to an ipv4-mapped dst", codecV4Src, netip.AddrFrom16(codecV4Dst.As16()), codecV4Src, codecV4Dst, 20},
		{"mixed families: ipv4 to ipv6 goes to 0.0.0.0", codecV4Src, codecV6Dst, codecV4Src, netip.IPv4Unspecified(), 20},
		{"mixed families: ipv6 to ipv4 uses the mapped form", codecV6Src, codecV4Dst, codecV6Src, netip.AddrFrom16(codecV4Dst.As16()), 40},
	}
	segs := []Segment{codecSYN(), codecData(), {SrcPort: 1, DstPort: 2, Flags: FlagACK, Payload: bytes.Repeat([]byte{0xa5}, 1461)}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range segs {
				b := AppendPacket(nil, tt.src, tt.dst, &s)
				if len(b) != PacketLen(tt.src, &s) {
					t.Errorf("len %d, PacketLen %d", len(b), PacketLen(tt.src, &s))
				}
				src, dst, tcp, err := ParsePacket(b)
				if err != nil {
					t.Fatal(err)
				}
				if src != tt.wantSrc || dst != tt.wantDst {
					t.Errorf("addresses %v > %v, want %v > %v", src, dst, tt.wantSrc, tt.wantDst)
				}
				if len(b)-len(tcp) != tt.wantHeader {
					t.Errorf("IP header %d bytes, want %d", len(b)-len(tcp), tt.wantHeader)
				}
				if !TCPChecksumValid(src, dst, tcp) {
					t.Error("TCP checksum does not verify")
				}
				got, err := ParseSegment(tcp)
				if err != nil {
					t.Fatal(err)
				}
				want := s
				want.Checksum = got.Checksum
				if !segmentsEqual(got, want) {
					t.Errorf("got  %v\nwant %v", got, want)
				}
				if tt.wantHeader == 20 {
					// TTL 64, DF, ID 0, DSCP/ECN 0.
					if b[8] != 64 || b[6] != 0x40 || b[7] != 0 || b[4] != 0 || b[5] != 0 || b[1] != 0 {
						t.Errorf("ipv4 header %x", b[:20])
					}
				} else if b[7] != 64 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
					t.Errorf("ipv6 header %x", b[:40])
				}
			}
		})
	}
}

func TestParsePacketNoAllocs(t *testing.T) {
	for _, p := range []string{codecSYNv4Hex, codecDataV6Hex} {
		b := codecHex(t, p)
		var tcp []byte
		allocs := testing.AllocsPerRun(100, func() {
			_, _, tcp, _ = ParsePacket(b)
		})
		if allocs != 0 || tcp == nil {
			t.Errorf("ParsePacket allocates %v times (tcp %x)", allocs, tcp)
		}
	}
}

func TestAppendPacketNoAllocs(t *testing.T) {
	s := codecData()
	s.Payload = make([]byte, 1460)
	for _, addrs := range [][2]netip.Addr{{codecV4Src, codecV4Dst}, {codecV6Src, codecV6Dst}} {
		buf := make([]byte, 0, PacketLen(addrs[0], &s))
		allocs := testing.AllocsPerRun(100, func() {
			buf = AppendPacket(buf[:0], addrs[0], addrs[1], &s)
		})
		if allocs != 0 {
			t.Errorf("%v: AppendPacket allocates %v times", addrs[0], allocs)
		}
	}
}

func BenchmarkAppendPacket1460(b *testing.B) {
	s := Segment{SrcPort: 80, DstPort: 40000, Seq: 1, Ack: 1, Flags: FlagACK, Window: 502,
		Options: Options{HasTimestamp: true, TSVal: 100, TSEcr: 200}, Payload: make([]byte, 1460)}
	buf := make([]byte, 0, PacketLen(codecV4Src, &s))
	b.SetBytes(int64(cap(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPacket(buf[:0], codecV4Src, codecV4Dst, &s)
	}
}

// TestUnicast: IPv4 addresses take a shortcut through their bytes, which
// must agree with netip's own multicast test and the limited broadcast,
// mapped or not.
func TestUnicast(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.1", true}, {"0.0.0.0", true}, {"223.255.255.255", true}, {"240.0.0.1", true}, {"255.255.255.254", true},
		{"224.0.0.1", false}, {"239.255.255.255", false}, {"255.255.255.255", false},
		{"::ffff:10.0.0.1", true}, {"::ffff:224.0.0.1", false}, {"::ffff:255.255.255.255", false},
		{"2001:db8::1", true}, {"::1", true}, {"ff02::1", false}, {"fe80::1", true},
	} {
		a := netip.MustParseAddr(tt.addr)
		if got := unicast(a); got != tt.want {
			t.Errorf("unicast(%s) = %t, want %t", a, got, tt.want)
		}
		if general := !a.IsMulticast() && a.Unmap() != netip.AddrFrom4([4]byte{255, 255, 255, 255}); general != tt.want {
			t.Errorf("%s: the table is wrong (netip says %t)", a, general)
		}
	}
}
