package diagram

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

var (
	update = flag.Bool("update", false, "rewrite the golden files in testdata/")
	outDir = flag.String("out", "", "also write every rendered SVG to this directory (to look at them)")
)

var (
	client = netip.MustParseAddrPort("10.0.0.2:40000")
	server = netip.MustParseAddrPort("10.0.0.1:80")
)

const ms = time.Millisecond

// handshakeRecords is a whole connection with a 10 ms one-way delay: the
// three-way handshake (data on the third segment), an acknowledgment, the
// four-way close and TIME-WAIT giving way to CLOSED after 2·MSL.
func handshakeRecords() []Record {
	c2s := func(t time.Duration, seg fsm.Segment) Packet {
		seg.SrcPort, seg.DstPort = client.Port(), server.Port()
		return Packet{Time: t, RecvTime: t + 10*ms, Src: client, Dst: server, Segment: seg}
	}
	s2c := func(t time.Duration, seg fsm.Segment) Packet {
		seg.SrcPort, seg.DstPort = server.Port(), client.Port()
		return Packet{Time: t, RecvTime: t + 10*ms, Src: server, Dst: client, Segment: seg}
	}
	state := func(t time.Duration, a netip.AddrPort, s fsm.State) StateChange {
		return StateChange{Time: t, Endpoint: a, State: s}
	}
	const (
		syn = fsm.FlagSYN
		ack = fsm.FlagACK
		psh = fsm.FlagPSH
		fin = fsm.FlagFIN
	)
	mss := fsm.Options{MSS: 1460, HasMSS: true}
	return []Record{
		state(0, client, fsm.SynSent),
		state(0, netip.MustParseAddrPort("0.0.0.0:80"), fsm.Listen), // a listener on every address
		c2s(0, fsm.Segment{Flags: syn, Seq: 100, Window: 65535, Options: mss}),
		state(10*ms, server, fsm.SynReceived),
		s2c(10*ms, fsm.Segment{Flags: syn | ack, Seq: 300, Ack: 101, Window: 65535, Options: mss}),
		state(20*ms, client, fsm.Established),
		c2s(20*ms, fsm.Segment{Flags: ack, Seq: 101, Ack: 301, Window: 65535}),
		c2s(20*ms, fsm.Segment{Flags: psh | ack, Seq: 101, Ack: 301, Window: 65535, Payload: []byte("hello")}),
		state(30*ms, server, fsm.Established),
		s2c(30*ms, fsm.Segment{Flags: ack, Seq: 301, Ack: 106, Window: 65530}),
		state(100*ms, client, fsm.FinWait1),
		c2s(100*ms, fsm.Segment{Flags: fin | ack, Seq: 106, Ack: 301, Window: 65535}),
		state(110*ms, server, fsm.CloseWait),
		s2c(110*ms, fsm.Segment{Flags: ack, Seq: 301, Ack: 107, Window: 65535}),
		state(120*ms, client, fsm.FinWait2),
		state(150*ms, server, fsm.LastAck),
		s2c(150*ms, fsm.Segment{Flags: fin | ack, Seq: 301, Ack: 107, Window: 65535}),
		state(160*ms, client, fsm.TimeWait),
		c2s(160*ms, fsm.Segment{Flags: ack, Seq: 107, Ack: 302, Window: 65535}),
		state(170*ms, server, fsm.Closed),
		state(60*time.Second+160*ms, client, fsm.Closed),
	}
}

func render(t *testing.T, name string, d Diagram, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, d, opts); err != nil {
		t.Fatal(err)
	}
	checkWellFormed(t, buf.Bytes())
	if *outDir != "" {
		if err := os.WriteFile(filepath.Join(*outDir, name+".svg"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// checkWellFormed decodes the whole document and checks its root.
func checkWellFormed(t *testing.T, doc []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Space + " " + se.Name.Local
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Errorf("root element is %q, want svg in the SVG namespace", root)
	}
}

func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the rendered diagram (run go test ./diagram -update and look at it)", path)
	}
}

func TestGoldenHandshake(t *testing.T) {
	d := FromPackets("10.0.0.2:40000 connects to 10.0.0.1:80", handshakeRecords())
	golden(t, "handshake.svg", render(t, "handshake", d, Options{}))
}

func TestGoldenHandshakeRelative(t *testing.T) {
	d := FromPackets("Relative sequence numbers, with TCP options", handshakeRecords())
	got := render(t, "handshake-relative", d, Options{Relative: true, TCPOptions: true})
	golden(t, "handshake-relative.svg", got)
	for _, want := range []string{
		">S seq=0 win=65535<", ">S. seq=0 ack=1 win=65535<", ">P. seq=1 ack=1 len=5 win=65535<",
		">F. seq=6 ack=1 win=65535<", ">. seq=7 ack=2 win=65535<", "&lt;mss 1460&gt;",
	} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("relative diagram lacks %q", want)
		}
	}
}

func TestFromPackets(t *testing.T) {
	d := FromPackets("t", handshakeRecords())
	if want := []string{"10.0.0.2:40000", "10.0.0.1:80"}; strings.Join(d.Columns, ",") != strings.Join(want, ",") {
		t.Errorf("columns %q, want %q (the listener's 0.0.0.0:80 drawn on 10.0.0.1:80)", d.Columns, want)
	}
	var arrows, marks int
	for _, e := range d.Events {
		switch e := e.(type) {
		case Arrow:
			arrows++
			if e.Segment == nil || e.RecvTime != e.SendTime+10*ms {
				t.Errorf("arrow %+v", e)
			}
		case StateMark:
			marks++
		}
	}
	if arrows != 9 || marks != 12 {
		t.Errorf("%d arrows and %d state marks, want 9 and 12", arrows, marks)
	}
	svg := render(t, "frompackets", d, Options{})
	for _, want := range []string{">S. seq=300 ack=101 win=65535<", ">P. seq=101 ack=301 len=5 win=65535<", ">TIME-WAIT<", ">FIN-WAIT-1<", ">LISTEN<", "+59.99 s"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("diagram lacks %q", want)
		}
	}
}

// TestDrops draws the three kinds of failed delivery, as a connection
// with 5 ms one-way delay and a 1 s RTO meets them.
func TestDrops(t *testing.T) {
	data := func(seq fsm.Seq) fsm.Segment {
		return fsm.Segment{SrcPort: 40000, DstPort: 80, Flags: fsm.FlagPSH | fsm.FlagACK, Seq: seq, Ack: 301, Window: 502, Payload: make([]byte, 100)}
	}
	ack := fsm.Segment{SrcPort: 80, DstPort: 40000, Flags: fsm.FlagACK, Seq: 301, Ack: 201, Window: 65435}
	d := FromPackets("A bad checksum, a loss, a retransmission", []Record{
		StateChange{Time: 0, Endpoint: client, State: fsm.Established},
		StateChange{Time: 0, Endpoint: server, State: fsm.Established},
		Packet{Time: 0, RecvTime: 5 * ms, Src: client, Dst: server, Segment: data(101), BadChecksum: true},
		Packet{Time: 1000 * ms, Src: client, Dst: server, Segment: data(101), Lost: true, Note: "retransmission, lost"},
		Packet{Time: 3000 * ms, RecvTime: 3005 * ms, Src: client, Dst: server, Segment: data(101), Note: "retransmission"},
		Packet{Time: 3005 * ms, RecvTime: 3010 * ms, Src: server, Dst: client, Segment: ack},
		Packet{Time: 3020 * ms, RecvTime: 3025 * ms, Src: client, Dst: server, Segment: data(90001), Dropped: true, Note: "dropped: outside the receive window"},
		Packet{Time: 3025 * ms, RecvTime: 3030 * ms, Src: server, Dst: client, Segment: ack, Note: "challenge: ACK of RCV.NXT"},
	})
	svg := render(t, "drops", d, Options{})
	golden(t, "drops.svg", svg)
	for _, want := range []string{">dropped: bad checksum<", ">retransmission, lost<", ">dropped: outside the receive window<", ">retransmission<", `stroke="#c62828"`, "stroke-dasharray"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("diagram lacks %q", want)
		}
	}
	// Without a note, a dropped or lost arrow says so.
	svg = render(t, "drops-plain", Diagram{Events: []Event{
		Arrow{From: "A", To: "B", Label: "x", Dropped: true},
		Arrow{From: "A", To: "B", Label: "y", Lost: true},
	}}, Options{})
	for _, want := range []string{">dropped<", ">lost<"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("diagram lacks %q", want)
		}
	}
}

// TestCrossing draws a simultaneous close: two FINs cross, and so do
// their ACKs; every label must stay clear of the others.
func TestCrossing(t *testing.T) {
	c2s := func(t, recv time.Duration, seg fsm.Segment) Packet {
		seg.SrcPort, seg.DstPort = client.Port(), server.Port()
		return Packet{Time: t, RecvTime: recv, Src: client, Dst: server, Segment: seg}
	}
	s2c := func(t, recv time.Duration, seg fsm.Segment) Packet {
		seg.SrcPort, seg.DstPort = server.Port(), client.Port()
		return Packet{Time: t, RecvTime: recv, Src: server, Dst: client, Segment: seg}
	}
	fa := fsm.FlagFIN | fsm.FlagACK
	d := FromPackets("Simultaneous close", []Record{
		StateChange{Time: 0, Endpoint: client, State: fsm.Established},
		StateChange{Time: 0, Endpoint: server, State: fsm.Established},
		StateChange{Time: 10 * ms, Endpoint: client, State: fsm.FinWait1},
		c2s(10*ms, 30*ms, fsm.Segment{Flags: fa, Seq: 500, Ack: 900, Window: 65535}),
		StateChange{Time: 12 * ms, Endpoint: server, State: fsm.FinWait1},
		s2c(12*ms, 32*ms, fsm.Segment{Flags: fa, Seq: 900, Ack: 500, Window: 65535}),
		StateChange{Time: 30 * ms, Endpoint: server, State: fsm.Closing},
		s2c(30*ms, 50*ms, fsm.Segment{Flags: fsm.FlagACK, Seq: 901, Ack: 501, Window: 65535}),
		StateChange{Time: 32 * ms, Endpoint: client, State: fsm.Closing},
		c2s(32*ms, 52*ms, fsm.Segment{Flags: fsm.FlagACK, Seq: 501, Ack: 901, Window: 65535}),
		StateChange{Time: 50 * ms, Endpoint: client, State: fsm.TimeWait},
		StateChange{Time: 52 * ms, Endpoint: server, State: fsm.TimeWait},
	})
	svg := render(t, "crossing", d, Options{})
	l, err := layout(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, score := l.placeArrows(); score >= 100 {
		t.Errorf("labels overlap (score %v)", score)
	}
	if !bytes.Contains(svg, []byte(">CLOSING<")) {
		t.Error("no CLOSING state")
	}
}

func TestEscaping(t *testing.T) {
	nasty := `<script>alert("x")</script> & 'quotes' ]]> ` + "\x00\x1b"
	d := Diagram{
		Title:   nasty,
		Columns: []string{"a<b>", `c&"d"`},
		Events: []Event{
			StateMark{Column: "a<b>", State: nasty},
			Arrow{From: "a<b>", To: `c&"d"`, Label: nasty, Note: "</text><text>"},
		},
	}
	svg := render(t, "escaping", d, Options{})
	for _, bad := range []string{"<script", "</text><text>", "a<b>", "\x00", "\x1b"} {
		if bytes.Contains(svg, []byte(bad)) {
			t.Errorf("output contains unescaped %q", bad)
		}
	}
	// The decoded character data holds the text as given (invalid XML
	// characters replaced).
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var texts []string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{`<script>alert("x")</script> & 'quotes' ]]> ` + "\uFFFD\uFFFD", "a<b>", `c&"d"`, "</text><text>"} {
		if !strings.Contains(all, want) {
			t.Errorf("decoded text lacks %q", want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	d := FromPackets("determinism", handshakeRecords())
	first := render(t, "determinism", d, Options{Relative: true})
	for range 20 {
		if again := render(t, "determinism", FromPackets("determinism", handshakeRecords()), Options{Relative: true}); !bytes.Equal(first, again) {
			t.Fatal("two renderings of the same diagram differ")
		}
	}
}

// TestZeroDelayOrder checks that events at one instant keep their order:
// the state change a segment causes is drawn after it, and a horizontal
// arrow needs one row.
func TestZeroDelayOrder(t *testing.T) {
	d := Diagram{Events: []Event{
		StateMark{Column: "A", State: "SYN-SENT"},
		Arrow{From: "A", To: "B", Label: "S seq=0"},
		StateMark{Column: "B", State: "SYN-RECEIVED"},
		Arrow{From: "B", To: "A", Label: "S. seq=0 ack=1"},
		StateMark{Column: "A", State: "ESTABLISHED"},
	}}
	l, err := layout(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.rows) != 5 {
		t.Fatalf("%d rows, want 5", len(l.rows))
	}
	for i := 1; i < len(l.rows); i++ {
		if l.rows[i].y <= l.rows[i-1].y {
			t.Errorf("row %d is not below row %d", i, i-1)
		}
	}
	for _, a := range l.arrows {
		if a.y1 != a.y2 || a.recvRow != -1 {
			t.Errorf("arrow %q is not horizontal: y %v -> %v", a.label, a.y1, a.y2)
		}
	}
	if got := []string{l.marks[0].State, l.marks[1].State, l.marks[2].State}; l.rows[0].kind != rowState || l.rows[2].kind != rowState || l.rows[4].kind != rowState {
		t.Errorf("rows out of order: %+v (%v)", l.rows, got)
	}
}

// TestArrivalOrder checks where a delayed arrival goes: before the events
// listed after it that happen at or after its arrival, and state changes
// at one instant on different columns share a row.
func TestArrivalOrder(t *testing.T) {
	d := Diagram{Events: []Event{
		Arrow{From: "A", To: "B", SendTime: 0, RecvTime: 10 * ms, Label: "one"},
		Arrow{From: "A", To: "B", SendTime: 5 * ms, RecvTime: 12 * ms, Label: "two"},
		StateMark{Column: "B", Time: 10 * ms, State: "X"},
		StateMark{Column: "A", Time: 10 * ms, State: "Y"},
		StateMark{Column: "A", Time: 11 * ms, State: "Z"},
	}}
	l, err := layout(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range l.rows {
		switch r.kind {
		case rowSend:
			kinds = append(kinds, "send "+l.arrows[r.arrow].label)
		case rowRecv:
			kinds = append(kinds, "recv "+l.arrows[r.arrow].label)
		case rowState:
			s := "state"
			for _, m := range r.states {
				s += " " + l.marks[m].State
			}
			kinds = append(kinds, s)
		}
	}
	want := "send one|send two|recv one|state X Y|state Z|recv two"
	if got := strings.Join(kinds, "|"); got != want {
		t.Errorf("rows\n got %s\nwant %s", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, d := range []Diagram{
		{Events: []Event{Arrow{From: "A", To: "A"}}},
		{Events: []Event{Arrow{From: "", To: "A"}}},
		{Events: []Event{StateMark{State: "CLOSED"}}},
		{Columns: []string{""}},
		{Events: []Event{nil}},
	} {
		if err := Render(io.Discard, d, Options{}); err == nil {
			t.Errorf("Render(%+v): no error", d)
		}
	}
	if err := Render(failWriter{}, Diagram{}, Options{}); err == nil {
		t.Error("Render to a failing writer: no error")
	}
	// An empty diagram is still a picture.
	render(t, "empty", Diagram{}, Options{})
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestFromPacketsSelfAddressed: a segment whose source and destination are
// the same address cannot be an arrow between columns; FromPackets marks it
// on its column and the diagram still renders (found by the API fuzzer).
func TestFromPacketsSelfAddressed(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.0:0")
	d := FromPackets("self", []Record{Packet{Src: a, Dst: a, Segment: fsm.Segment{Flags: fsm.FlagSYN, Seq: 7}}})
	var b strings.Builder
	if err := Render(&b, d, Options{}); err != nil {
		t.Fatalf("Render: %v", err)
	}
	if !strings.Contains(b.String(), "segment to itself: seq=7") {
		t.Fatal("the self-addressed segment is not shown")
	}
}

// TestFates draws what became of each segment so that a page (or a
// reader of the bare SVG) tells them apart: every arrow is a group with a
// class naming its fate, a data-ref giving its position among the
// packets, and a <title> explaining it; a segment resending sequence
// space already sent is marked a retransmission by FromPackets itself.
func TestFates(t *testing.T) {
	data := func(seq fsm.Seq, n int) fsm.Segment {
		return fsm.Segment{SrcPort: 40000, DstPort: 80, Flags: fsm.FlagACK, Seq: seq, Ack: 301, Window: 502, Payload: make([]byte, n)}
	}
	ack := fsm.Segment{SrcPort: 80, DstPort: 40000, Flags: fsm.FlagACK, Seq: 301, Ack: 101, Window: 65535}
	d := FromPackets("fates", []Record{
		StateChange{Time: 0, Endpoint: server, State: fsm.Established},
		Packet{Time: 0, Src: client, Dst: server, Segment: data(111, 10), Held: true, Title: "DATA_OUT_OF_ORDER (RFC 9293 §3.10.7.4): held"},
		Packet{Time: 0, Src: server, Dst: client, Segment: ack},
		Packet{Time: 0, Src: client, Dst: server, Segment: data(101, 10)},
		Packet{Time: 0, Src: client, Dst: server, Segment: data(101, 10), Answered: true},
		Packet{Time: 0, Src: client, Dst: server, Segment: data(90001, 1), Dropped: true},
		StateChange{Time: 0, Endpoint: server, State: fsm.CloseWait},
	})
	var fates []string
	for _, e := range d.Events {
		if a, ok := e.(Arrow); ok {
			fates = append(fates, a.Ref+":"+strconv.FormatBool(a.Retransmission))
		}
	}
	// 111+10 was sent before 101+10: the first segment at 101 fills the
	// gap (new space, though below what was sent); the second resends it.
	if got, want := strings.Join(fates, " "), "0:false 1:false 2:false 3:true 4:false"; got != want {
		t.Errorf("refs and retransmissions %q, want %q", got, want)
	}
	svg := string(render(t, "fates", d, Options{}))
	for _, want := range []string{
		`<g class="seg held" data-ref="0">` + "\n<title>DATA_OUT_OF_ORDER (RFC 9293 §3.10.7.4): held</title>",
		`<g class="seg accepted" data-ref="1">` + "\n<title>. seq=301 ack=101 win=65535</title>",
		`<g class="seg answered retransmission" data-ref="3">`,
		`<g class="seg dropped" data-ref="4">`,
		`<g class="state" data-ref="1">`,
		">held (out of order)<", ">answered<", `stroke-width="3"`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("diagram lacks %q", want)
		}
	}
}

func TestSpans(t *testing.T) {
	var s spans
	s.base = 1000
	for _, tt := range []struct {
		seq  fsm.Seq
		n    int
		seen bool
	}{
		{1000, 10, false}, {1020, 10, false}, {1010, 10, false}, // a gap filled
		{1005, 1, true}, {1029, 5, true}, {1034, 1, false}, {990, 10, false}, {995, 10, true},
	} {
		if got := s.add(tt.seq, tt.n); got != tt.seen {
			t.Errorf("add(%d, %d) = %v, want %v (spans %v)", tt.seq, tt.n, got, tt.seen, s.r)
		}
	}
	if len(s.r) != 1 || s.r[0] != [2]int64{-10, 35} {
		t.Errorf("spans %v, want one [-10, 35)", s.r)
	}
}
