package pcap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// The file header, byte by byte (little-endian): magic a1b23c4d, version
// 2.4, thiszone 0, sigfigs 0, snaplen 262144, linktype 101.
const goldenHeader = "4d3cb2a1" + "0200" + "0400" + "00000000" + "00000000" + "00000400" + "65000000"

func TestHeaderGolden(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewWriter(&buf); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(buf.Bytes()); got != goldenHeader {
		t.Errorf("header\n got %s\nwant %s", got, goldenHeader)
	}
}

func TestRecordGolden(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// A SYN from 10.0.0.2:40000 to 10.0.0.1:80, seq 100, no options.
	seg := fsm.Segment{SrcPort: 40000, DstPort: 80, Seq: 100, Flags: fsm.FlagSYN, Window: 65535}
	pkt := fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), &seg)
	// 2024-01-02T03:04:05.123456789Z is 1704164645 s (0x6593 7d25) and
	// 123456789 ns (0x075b cd15).
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := w.WritePacket(ts, pkt); err != nil {
		t.Fatal(err)
	}
	const wantRecord = "257d9365" + "15cd5b07" + "28000000" + "28000000" +
		// IPv4: version/IHL, TOS, total length 40, ID 0, DF, TTL 64, TCP,
		// header checksum (~0xd931), 10.0.0.2, 10.0.0.1.
		"4500" + "0028" + "0000" + "4000" + "4006" + "26ce" + "0a000002" + "0a000001" +
		// TCP: ports 40000 > 80, seq 100, ack 0, offset 5, SYN, window
		// 65535, checksum (~(0xecf6 + pseudo-header 0x141d)), urgent 0.
		"9c40" + "0050" + "00000064" + "00000000" + "5002" + "ffff" + "feeb" + "0000"
	got := hex.EncodeToString(buf.Bytes()[len(goldenHeader)/2:])
	if got != wantRecord {
		t.Errorf("record\n got %s\nwant %s", got, wantRecord)
	}
	if !fsm.TCPChecksumValid(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), pkt[20:]) {
		t.Error("golden packet has a bad TCP checksum")
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	type rec struct {
		t    time.Time
		data []byte
	}
	v4 := fsm.Segment{SrcPort: 80, DstPort: 40000, Seq: 300, Ack: 101, Flags: fsm.FlagSYN | fsm.FlagACK, Window: 1000,
		Options: fsm.Options{MSS: 1460, HasMSS: true}}
	v6 := fsm.Segment{SrcPort: 40000, DstPort: 80, Seq: 101, Ack: 301, Flags: fsm.FlagPSH | fsm.FlagACK, Window: 512, Payload: []byte("hello")}
	recs := []rec{
		{base, fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), &v4)},
		{base.Add(1500 * time.Microsecond), fsm.AppendPacket(nil, netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::1"), &v6)},
		{base.Add(60*time.Second + 1), bytes.Repeat([]byte{0x45}, 3)}, // any bytes: the format does not look inside
	}
	for _, r := range recs {
		if err := w.WritePacket(r.t, r.data); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != LinkTypeRaw || r.SnapLen() != SnapLen || !r.Nanoseconds() {
		t.Errorf("header: link type %d, snaplen %d, nanoseconds %t", r.LinkType(), r.SnapLen(), r.Nanoseconds())
	}
	for i, want := range recs {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !got.Time.Equal(want.t) || !bytes.Equal(got.Data, want.data) || got.OrigLen != len(want.data) {
			t.Errorf("record %d: got %s %x (orig %d), want %s %x", i, got.Time, got.Data, got.OrigLen, want.t, want.data)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last record: %v, want io.EOF", err)
	}
}

func TestTruncatedToSnapLen(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	big := make([]byte, SnapLen+10)
	big[0] = 0x45
	if err := w.WritePacket(time.Unix(1, 0), big); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Data) != SnapLen || rec.OrigLen != SnapLen+10 {
		t.Errorf("got %d bytes of %d, want %d of %d", len(rec.Data), rec.OrigLen, SnapLen, SnapLen+10)
	}
}

// TestReaderMicrosecondsBigEndian reads a file as an older, big-endian
// writer produces it.
func TestReaderMicrosecondsBigEndian(t *testing.T) {
	b, _ := hex.DecodeString("a1b2c3d4" + "0002" + "0004" + "00000000" + "00000000" + "0000ffff" + "00000065" +
		"00000001" + "0001e240" + "00000002" + "00000004" + "6000")
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.Nanoseconds() || r.SnapLen() != 65535 || r.LinkType() != LinkTypeRaw {
		t.Errorf("header: nanoseconds %t, snaplen %d, link type %d", r.Nanoseconds(), r.SnapLen(), r.LinkType())
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1, 123456000).UTC(); !rec.Time.Equal(want) || rec.OrigLen != 4 || hex.EncodeToString(rec.Data) != "6000" {
		t.Errorf("got %s %x orig %d", rec.Time, rec.Data, rec.OrigLen)
	}
}

func TestErrors(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	n := buf.Len()
	for _, tc := range []struct {
		name string
		t    time.Time
		data []byte
	}{
		{"empty", time.Unix(1, 0), nil},
		{"before 1970", time.Unix(-1, 0), []byte{0x45}},
		{"after 2106", time.Unix(1<<32, 0), []byte{0x45}},
	} {
		if err := w.WritePacket(tc.t, tc.data); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if buf.Len() != n {
		t.Errorf("failed writes wrote %d bytes", buf.Len()-n)
	}

	if _, err := NewWriter(failWriter{}); err == nil {
		t.Error("NewWriter on a failing writer: no error")
	}
	if _, err := NewReader(strings.NewReader("short")); err == nil {
		t.Error("short header: no error")
	}
	if _, err := NewReader(bytes.NewReader(make([]byte, 24))); err == nil || !strings.Contains(err.Error(), "magic") {
		t.Errorf("bad magic: %v", err)
	}
	hdr, _ := hex.DecodeString(goldenHeader)
	rec := append(append([]byte{}, hdr...), make([]byte, 16)...)
	rec[24+8] = 4 // 4 bytes captured, none present
	r, _ := NewReader(bytes.NewReader(rec))
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated data: %v, want io.ErrUnexpectedEOF", err)
	}
	huge := append(append([]byte{}, hdr...), make([]byte, 16)...)
	huge[16], huge[17], huge[18], huge[19] = 0xff, 0xff, 0xff, 0xff // snaplen 4 GiB
	huge[24+8], huge[24+9], huge[24+10], huge[24+11] = 0xff, 0xff, 0xff, 0x7f
	r, _ = NewReader(bytes.NewReader(huge))
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("2 GiB record: %v, want a refusal", err)
	}
	r, _ = NewReader(bytes.NewReader(append(append([]byte{}, hdr...), 1, 2, 3)))
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated record header: %v, want io.ErrUnexpectedEOF", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
