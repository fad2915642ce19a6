package service

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/pcap"
)

// exported is one packet of an exported pcap, decoded.
type exported struct {
	at  time.Duration // since the session's creation
	seg fsm.Segment
	src string
}

func readPcap(t *testing.T, file []byte, created time.Time) []exported {
	t.Helper()
	r, err := pcap.NewReader(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("pcap: %v", err)
	}
	if r.LinkType() != pcap.LinkTypeRaw || !r.Nanoseconds() {
		t.Fatalf("link type %d, nanoseconds %t", r.LinkType(), r.Nanoseconds())
	}
	var out []exported
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("pcap record %d: %v", len(out), err)
		}
		src, _, tcp, err := fsm.ParsePacket(rec.Data)
		if err != nil {
			t.Fatalf("pcap record %d: %v", len(out), err)
		}
		seg, err := fsm.ParseSegment(tcp)
		if err != nil {
			t.Fatalf("pcap record %d: %v", len(out), err)
		}
		out = append(out, exported{at: rec.Time.Sub(created), seg: seg, src: src.String()})
	}
}

// TestExportPcapHasEverySegmentInLogOrderAtItsTime: the pcap holds every
// inbound and outbound segment in the order the log has them, each at
// its session-clock time from the session's creation, including a
// retransmission a timer sent in the middle of a longer clock advance.
func TestExportPcapHasEverySegmentInLogOrderAtItsTime(t *testing.T) {
	e := newEnv(t, Config{})
	s, conn := walkthroughOpen(t, e, "pcap")
	c := ctx(t)
	// Our data, unacknowledged: the RTO (1 s) fires during a 5 s advance.
	must[*pb.SendDataResponse](t)(e.endpoints.SendData(c, &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Text{Text: "hi"}}))
	must[*pb.AdvanceClockResponse](t)(e.sessions.AdvanceClock(c, &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(5 * time.Second)}}))

	resp := must[*pb.ExportPcapResponse](t)(e.logs.ExportPcap(c, &pb.ExportPcapRequest{Name: s}))
	created := e.getSession(s).CreateTime.AsTime()
	got := readPcap(t, resp.Pcap, created)
	type want struct {
		at    time.Duration
		src   string
		flags fsm.Flags
		seq   uint32
		ack   uint32
		len   int
	}
	wants := []want{
		{0, "10.0.0.2", fsm.FlagSYN, 100, 0, 0},
		{0, "10.0.0.1", fsm.FlagSYN | fsm.FlagACK, 1000, 101, 0},
		{0, "10.0.0.2", fsm.FlagPSH | fsm.FlagACK, 101, 1001, 5},
		// The delayed ACK of "hello" rides on our data.
		{0, "10.0.0.1", fsm.FlagPSH | fsm.FlagACK, 1001, 106, 2},
		{time.Second, "10.0.0.1", fsm.FlagPSH | fsm.FlagACK, 1001, 106, 2},
		{3 * time.Second, "10.0.0.1", fsm.FlagPSH | fsm.FlagACK, 1001, 106, 2},
	}
	if len(got) != len(wants) || int(resp.PacketCount) != len(got) {
		for _, g := range got {
			t.Logf("%v %s %v", g.at, g.src, g.seg)
		}
		t.Fatalf("got %d packets (count %d), want %d", len(got), resp.PacketCount, len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.at != w.at || g.src != w.src || g.seg.Flags != w.flags || uint32(g.seg.Seq) != w.seq || uint32(g.seg.Ack) != w.ack || len(g.seg.Payload) != w.len {
			t.Errorf("packet %d: %v from %s at %v; want %+v", i, g.seg, g.src, g.at, w)
		}
	}
}

// TestDrawDiagramShowsStatesDropsAndTheCap: the diagram names each state
// an endpoint entered, marks a segment the engine dropped with its reason,
// and with max_segments draws only that many and says so.
func TestDrawDiagramShowsStatesDropsAndTheCap(t *testing.T) {
	e := newEnv(t, Config{})
	s, _ := walkthroughOpen(t, e, "ladder")
	bad := seg(client, server, 106, 1001, []string{"ACK"}, "x")
	bad.Checksum = new(uint32)
	*bad.Checksum = 1
	e.submit(s, bad)
	c := ctx(t)

	resp := must[*pb.DrawDiagramResponse](t)(e.logs.DrawDiagram(c, &pb.DrawDiagramRequest{Name: s, Relative: true}))
	svg := string(resp.Svg)
	for _, want := range []string{"<svg", "LISTEN", "SYN-RECEIVED", "ESTABLISHED", "10.0.0.1:80", "10.0.0.2:40000", "dropped: BAD_CHECKSUM", "S. seq=0 ack=1"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the diagram lacks %q", want)
		}
	}
	if resp.SegmentsDrawn != 4 || resp.SegmentsTotal != 4 || strings.Contains(svg, "of 4 segments") {
		t.Errorf("drawn %d of %d", resp.SegmentsDrawn, resp.SegmentsTotal)
	}

	resp = must[*pb.DrawDiagramResponse](t)(e.logs.DrawDiagram(c, &pb.DrawDiagramRequest{Name: s, MaxSegments: 2}))
	if resp.SegmentsDrawn != 2 || resp.SegmentsTotal != 4 || !strings.Contains(string(resp.Svg), "the first 2 of 4 segments") {
		t.Errorf("capped: drawn %d of %d", resp.SegmentsDrawn, resp.SegmentsTotal)
	}
	if strings.Contains(string(resp.Svg), "ESTABLISHED") {
		t.Errorf("capped at the SYN-ACK, the diagram shows a later state")
	}
}

func TestExportErrors(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("errs", nil)
	c := ctx(t)
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"pcap of an unknown session is NOT_FOUND", func() error {
			_, err := e.logs.ExportPcap(c, &pb.ExportPcapRequest{Name: "sessions/nope"})
			return err
		}, codes.NotFound},
		{"pcap of a bad name is INVALID_ARGUMENT", func() error {
			_, err := e.logs.ExportPcap(c, &pb.ExportPcapRequest{Name: "nope"})
			return err
		}, codes.InvalidArgument},
		{"diagram above the segment cap is INVALID_ARGUMENT", func() error {
			_, err := e.logs.DrawDiagram(c, &pb.DrawDiagramRequest{Name: s.Name, MaxSegments: maxDiagramSegments + 1})
			return err
		}, codes.InvalidArgument},
		{"diagram of an unknown session is NOT_FOUND", func() error {
			_, err := e.logs.DrawDiagram(c, &pb.DrawDiagramRequest{Name: "sessions/nope"})
			return err
		}, codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), tt.want) })
	}
	// An empty session exports an empty capture and an empty diagram.
	p := must[*pb.ExportPcapResponse](t)(e.logs.ExportPcap(c, &pb.ExportPcapRequest{Name: s.Name}))
	if p.PacketCount != 0 || len(p.Pcap) != 24 {
		t.Errorf("empty session: %d packets, %d bytes", p.PacketCount, len(p.Pcap))
	}
	if _, err := e.logs.DrawDiagram(c, &pb.DrawDiagramRequest{Name: s.Name}); err != nil {
		t.Errorf("diagram of an empty session: %v", err)
	}
}

// TestListRecordsExplainFillsInTheEngineExplanations: explanations are not
// logged; with explain the re-run supplies them for each output record.
func TestListRecordsExplainFillsInTheEngineExplanations(t *testing.T) {
	e := newEnv(t, Config{})
	s, _ := walkthroughOpen(t, e, "explain")
	bad := seg(client, server, 106, 1001, []string{"ACK"}, "x")
	bad.Checksum = new(uint32)
	*bad.Checksum = 1
	e.submit(s, bad)
	c := ctx(t)
	codesOf := func(explain bool, pageSize int32) map[string]bool {
		got := map[string]bool{}
		tok := ""
		for range 100 {
			resp := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(c, &pb.ListRecordsRequest{Parent: s, Explain: explain, PageSize: pageSize, PageToken: tok}))
			for _, r := range resp.Records {
				for _, x := range r.GetOutput().GetExplanations() {
					got[x.Code] = true
					if x.Section == "" || x.Text == "" {
						t.Errorf("record %d: explanation %v lacks its section or text", r.Index, x)
					}
				}
			}
			if tok = resp.NextPageToken; tok == "" {
				break
			}
		}
		return got
	}
	if got := codesOf(false, 0); len(got) != 0 {
		t.Errorf("without explain: %v", got)
	}
	for _, size := range []int32{0, 3} {
		got := codesOf(true, size)
		for _, want := range []string{"LISTEN_SYN_ACCEPTED", "BAD_CHECKSUM"} {
			if !got[want] {
				t.Errorf("page size %d: explanations %v lack %s", size, got, want)
			}
		}
	}
}
