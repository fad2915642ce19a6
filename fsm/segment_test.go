package fsm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// Known-good packets. The bytes and both checksums were computed outside
// this package (a short Python script with struct and RFC 1071's
// algorithm), so they check the codec rather than echo it.
const (
	// 192.0.2.1:40000 > 192.0.2.2:80 S 16909060:16909060(0) win 65535
	// <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>; TCP checksum 0x2365,
	// IPv4 header checksum 0xb6b8.
	codecSYNv4Hex = "4500003c000040004006b6b8c0000201c0000202" +
		"9c4000500102030400000000a002ffff23650000020405b40402080a000000010000000001030307"
	// [2001:db8::1]:80 > [2001:db8::2]:40000 P. 1000:1005(5) ack 16909061
	// win 502 <nop,nop,TS val 5 ecr 6> "hello"; TCP checksum 0x30e9 (odd
	// payload over the IPv6 pseudo-header).
	codecDataV6Hex = "600000000025064020010db800000000000000000000000120010db8000000000000000000000002" +
		"00509c40000003e801020305801801f630e900000101080a000000050000000668656c6c6f"
)

var (
	codecV4Src = netip.MustParseAddr("192.0.2.1")
	codecV4Dst = netip.MustParseAddr("192.0.2.2")
	codecV6Src = netip.MustParseAddr("2001:db8::1")
	codecV6Dst = netip.MustParseAddr("2001:db8::2")
)

func codecHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codecSYN is the Segment of codecSYNv4Hex.
func codecSYN() Segment {
	return Segment{
		SrcPort: 40000, DstPort: 80, Seq: 0x01020304, Flags: FlagSYN, Window: 65535,
		Options: Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1,
			HasWScale: true, WScale: 7},
	}
}

// codecData is the Segment of codecDataV6Hex.
func codecData() Segment {
	return Segment{
		SrcPort: 80, DstPort: 40000, Seq: 1000, Ack: 0x01020305, Flags: FlagPSH | FlagACK, Window: 502,
		Options: Options{HasTimestamp: true, TSVal: 5, TSEcr: 6}, Payload: []byte("hello"),
	}
}

// segmentsEqual compares every field, Payload by content.
func segmentsEqual(a, b Segment) bool {
	return a.SrcPort == b.SrcPort && a.DstPort == b.DstPort && a.Seq == b.Seq && a.Ack == b.Ack &&
		a.Flags == b.Flags && a.Window == b.Window && a.Checksum == b.Checksum && a.Urgent == b.Urgent &&
		a.Options == b.Options && bytes.Equal(a.Payload, b.Payload)
}

func TestParseSegmentKnownGood(t *testing.T) {
	tests := []struct {
		name     string
		packet   string
		ipHdr    int
		want     Segment
		checksum uint16
	}{
		{"ipv4 SYN", codecSYNv4Hex, 20, codecSYN(), 0x2365},
		{"ipv6 data", codecDataV6Hex, 40, codecData(), 0x30e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := codecHex(t, tt.packet)[tt.ipHdr:]
			got, err := ParseSegment(b)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Checksum = tt.checksum
			if !segmentsEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if len(got.Payload) > 0 && &got.Payload[0] != &b[len(b)-len(got.Payload)] {
				t.Error("payload does not alias the input")
			}
		})
	}
}

func TestAppendSegmentKnownGood(t *testing.T) {
	tests := []struct {
		name     string
		packet   string
		ipHdr    int
		seg      Segment
		src, dst netip.Addr
	}{
		{"ipv4 SYN", codecSYNv4Hex, 20, codecSYN(), codecV4Src, codecV4Dst},
		{"ipv6 data", codecDataV6Hex, 40, codecData(), codecV6Src, codecV6Dst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := codecHex(t, tt.packet)[tt.ipHdr:]
			tt.seg.Checksum = 0xdead // ignored
			prefix := []byte("prefix")
			got := AppendSegment(prefix, &tt.seg, tt.src, tt.dst)
			if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
				t.Errorf("got  %x\nwant prefix+%x", got, want)
			}
			if n := tt.seg.HeaderLen() + len(tt.seg.Payload); n != len(want) {
				t.Errorf("HeaderLen+payload = %d, want %d", n, len(want))
			}
		})
	}
}

func TestParseSegmentErrors(t *testing.T) {
	// hdr builds a header of 20+len(opts) bytes with data offset words.
	hdr := func(words byte, opts ...byte) []byte {
		b := make([]byte, 20, 20+len(opts))
		b[tcpDataOff] = words << 4
		return append(b, opts...)
	}
	tests := []struct {
		name    string
		b       []byte
		layer   string
		field   string
		reasons []string // substrings the reason must contain
	}{
		{"empty", nil, "tcp", "header length", []string{"0 bytes", "20-byte"}},
		{"19 bytes", make([]byte, 19), "tcp", "header length", []string{"19 bytes"}},
		{"data offset 0", hdr(0), "tcp", "data offset", []string{"0 words (0 bytes)", "20 bytes"}},
		{"data offset 4", hdr(4), "tcp", "data offset", []string{"4 words (16 bytes)", "segment is 20 bytes"}},
		{"data offset past buffer", hdr(6, 1, 1), "tcp", "data offset", []string{"6 words (24 bytes)", "22-byte segment"}},
		{"data offset 15 past buffer", hdr(15), "tcp", "data offset", []string{"15 words (60 bytes)", "20-byte"}},
		{"option length 0", hdr(6, 1, 99, 0, 0), "tcp option", "option length", []string{"kind 99", "offset 21", "length 0"}},
		{"option length 1", hdr(6, 2, 1, 0, 0), "tcp option", "option length", []string{"kind 2", "offset 20", "length 1"}},
		{"option past header", hdr(6, 1, 1, 99, 3), "tcp option", "option length", []string{"kind 99", "offset 22", "length 3", "24-byte header"}},
		{"option past header long", hdr(7, 8, 10, 0, 0, 0, 0, 0, 0), "tcp option", "option length", []string{"kind 8", "length 10", "28-byte header"}},
		{"no length byte", hdr(6, 1, 1, 1, 99), "tcp option", "option length", []string{"kind 99", "offset 23", "no length byte"}},
		{"mss length 3", hdr(6, 2, 3, 5, 0), "tcp option", "mss length", []string{"kind 2", "length 3", "want 4"}},
		{"mss length 6", hdr(7, 2, 6, 5, 0, 0, 0, 0, 0), "tcp option", "mss length", []string{"length 6"}},
		{"wscale length 4", hdr(6, 3, 4, 7, 0), "tcp option", "window scale length", []string{"kind 3", "length 4", "want 3"}},
		{"wscale length 2", hdr(6, 3, 2, 1, 1), "tcp option", "window scale length", []string{"length 2"}},
		{"sack-permitted length 3", hdr(6, 4, 3, 0, 0), "tcp option", "sack-permitted length", []string{"kind 4", "length 3"}},
		{"sack length 2", hdr(6, 5, 2, 0, 0), "tcp option", "sack length", []string{"kind 5", "length 2"}},
		{"sack length 9", hdr(8, 5, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "tcp option", "sack length", []string{"length 9"}},
		{"sack length 40", append(hdr(15, 5, 40), make([]byte, 38)...), "tcp option", "sack length", []string{"length 40"}},
		{"timestamp length 8", hdr(7, 8, 8, 0, 0, 0, 0, 0, 0), "tcp option", "timestamp length", []string{"kind 8", "length 8", "want 10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSegment(tt.b)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *ParseError; segment %+v", err, err, s)
			}
			if pe.Layer != tt.layer || pe.Field != tt.field {
				t.Errorf("got %q/%q, want %q/%q (%v)", pe.Layer, pe.Field, tt.layer, tt.field, err)
			}
			for _, r := range tt.reasons {
				if !strings.Contains(pe.Reason, r) {
					t.Errorf("reason %q lacks %q", pe.Reason, r)
				}
			}
			if !segmentsEqual(s, Segment{}) {
				t.Errorf("segment on error = %+v, want zero", s)
			}
		})
	}
}

func TestParseSegmentOptionQuirks(t *testing.T) {
	hdr := func(opts ...byte) []byte {
		b := make([]byte, 20, 20+len(opts))
		b[tcpDataOff] = byte((20+len(opts))/4) << 4
		return append(b, opts...)
	}
	tests := []struct {
		name string
		b    []byte
		want Options
	}{
		{"none", hdr(), Options{}},
		{"all nop", hdr(1, 1, 1, 1), Options{}},
		{"eol ends the list", hdr(2, 4, 5, 0xb4, 0, 2, 1, 0), Options{HasMSS: true, MSS: 1460}},
		{"bytes after eol ignored", hdr(0, 99, 0, 7), Options{}},
		{"unknown skipped and counted", hdr(30, 4, 1, 2, 2, 4, 1, 0xf4, 1, 1, 254, 2), Options{HasMSS: true, MSS: 500, Unknown: 2}},
		{"wscale above 14 kept", hdr(1, 3, 3, 200), Options{HasWScale: true, WScale: 200}},
		{"later option wins", hdr(2, 4, 0, 1, 2, 4, 0, 2), Options{HasMSS: true, MSS: 2}},
		{"later sack clears earlier blocks",
			hdr(1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1, 1, 5, 10, 0, 0, 0, 9, 0, 0, 0, 10),
			Options{NumSACK: 1, SACK: [4]SACKBlock{{9, 10}}}},
		{"four sack blocks", hdr(1, 1, 5, 34,
			0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8),
			Options{NumSACK: 4, SACK: [4]SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}}},
		{"sack-permitted and timestamp packed", hdr(4, 2, 8, 10, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1),
			Options{SACKPermitted: true, HasTimestamp: true, TSVal: 0xffffffff, TSEcr: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSegment(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if s.Options != tt.want {
				t.Errorf("options %+v, want %+v", s.Options, tt.want)
			}
		})
	}
}

func TestSegmentRoundTrip(t *testing.T) {
	blocks := [4]SACKBlock{{1000, 2000}, {3000, 4000}, {0xfffffff0, 10}, {50, 60}}
	n := 0
	for mask := range 16 {
		for nsack := range MaxSACKBlocks + 1 {
			o := Options{NumSACK: uint8(nsack)}
			copy(o.SACK[:nsack], blocks[:nsack])
			if mask&1 != 0 {
				o.HasMSS, o.MSS = true, 1460
			}
			if mask&2 != 0 {
				o.HasWScale, o.WScale = true, 14
			}
			if mask&4 != 0 {
				o.SACKPermitted = true
			}
			if mask&8 != 0 {
				o.HasTimestamp, o.TSVal, o.TSEcr = true, 0x11223344, 0x55667788
			}
			for _, payload := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("ab"), 700)} {
				for _, addrs := range [][2]netip.Addr{{codecV4Src, codecV4Dst}, {codecV6Src, codecV6Dst}} {
					n++
					s := Segment{SrcPort: 443, DstPort: 51000, Seq: 0xfffffff0, Ack: 77,
						Flags: FlagACK | FlagPSH | FlagECE, Window: 29200, Urgent: 3, Options: o, Payload: payload}
					b := AppendSegment(nil, &s, addrs[0], addrs[1])
					if len(b) != s.HeaderLen()+len(payload) || s.HeaderLen()%4 != 0 || s.HeaderLen() > MaxHeaderLen {
						t.Fatalf("%v: len %d, HeaderLen %d", o.String(), len(b), s.HeaderLen())
					}
					if !TCPChecksumValid(addrs[0], addrs[1], b) {
						t.Fatalf("%v: checksum invalid", o.String())
					}
					got, err := ParseSegment(b)
					if err != nil {
						t.Fatalf("%v: %v", o.String(), err)
					}
					want := s
					want.Checksum = got.Checksum
					// Blocks that do not fit in 40 bytes are dropped from the end.
					if k := s.Options.sackBlocksToEncode(); k < nsack {
						want.Options.NumSACK = uint8(k)
						clear(want.Options.SACK[k:])
					}
					if !segmentsEqual(got, want) {
						t.Fatalf("round trip:\ngot  %+v\nwant %+v", got, want)
					}
				}
			}
		}
	}
	if n != 16*5*3*2 {
		t.Fatalf("ran %d cases", n)
	}
}

func TestSegmentString(t *testing.T) {
	syn := Segment{SrcPort: 40000, DstPort: 80, Flags: FlagSYN, Window: 65535,
		Options: Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1,
			HasWScale: true, WScale: 7}}
	synAck := Segment{SrcPort: 80, DstPort: 40000, Ack: 1, Flags: FlagSYN | FlagACK, Window: 65535,
		Options: Options{HasMSS: true, MSS: 1460}}
	tests := []struct {
		s    Segment
		want string
	}{
		{syn, "40000 > 80 S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>"},
		{synAck, "80 > 40000 S. 0:0(0) ack 1 win 65535 <mss 1460>"},
		{Segment{SrcPort: 40000, DstPort: 80, Seq: 1, Ack: 1, Flags: FlagPSH | FlagACK, Window: 502,
			Payload: make([]byte, 100)}, "40000 > 80 P. 1:101(100) ack 1 win 502"},
		{Segment{SrcPort: 1, DstPort: 2, Seq: 5, Flags: FlagFIN | FlagACK, Ack: 9}, "1 > 2 F. 5:5(0) ack 9 win 0"},
		{Segment{SrcPort: 1, DstPort: 2, Seq: 5, Flags: FlagRST}, "1 > 2 R 5:5(0) win 0"},
		{Segment{SrcPort: 1, DstPort: 2, Seq: 0xffffffff, Payload: []byte("ab")}, "1 > 2 none 4294967295:1(2) win 0"},
		{Segment{SrcPort: 1, DstPort: 2, Flags: FlagSYN | FlagECE | FlagCWR}, "1 > 2 SEW 0:0(0) win 0"},
		{Segment{SrcPort: 1, DstPort: 2, Flags: FlagURG | FlagACK, Urgent: 4}, "1 > 2 .U 0:0(0) ack 0 win 0 urg 4"},
		{Segment{SrcPort: 1, DstPort: 2, Flags: FlagACK, Ack: 1,
			Options: Options{HasTimestamp: true, TSVal: 5, TSEcr: 6, NumSACK: 1, SACK: [4]SACKBlock{{1, 101}}}},
			"1 > 2 . 0:0(0) ack 1 win 0 <nop,nop,TS val 5 ecr 6,nop,nop,sack 1:101>"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestParseSegmentNoAllocs(t *testing.T) {
	b := codecHex(t, codecSYNv4Hex)[20:]
	var s Segment
	allocs := testing.AllocsPerRun(100, func() {
		s, _ = ParseSegment(b)
	})
	if allocs != 0 {
		t.Errorf("ParseSegment allocates %v times", allocs)
	}
	if s.Options.MSS != 1460 {
		t.Fatal("did not parse")
	}
}

func TestAppendSegmentNoAllocs(t *testing.T) {
	s := codecData()
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendSegment(buf[:0], &s, codecV6Src, codecV6Dst)
	})
	if allocs != 0 {
		t.Errorf("AppendSegment allocates %v times", allocs)
	}
}

func BenchmarkParseSegment(b *testing.B) {
	// A small data segment with the timestamp option, as in bulk transfer.
	s := Segment{SrcPort: 40000, DstPort: 80, Seq: 1, Ack: 1, Flags: FlagACK | FlagPSH, Window: 502,
		Options: Options{HasTimestamp: true, TSVal: 100, TSEcr: 200}, Payload: []byte("GET / HTTP/1.0\r\n\r\n")}
	buf := AppendSegment(nil, &s, codecV4Src, codecV4Dst)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSegment(buf); err != nil {
			b.Fatal(err)
		}
	}
}
