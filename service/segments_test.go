package service

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// packet encodes a segment from client to server as an IPv4 packet.
func packet(seq, ack uint32, flags fsm.Flags, payload string) []byte {
	s := &fsm.Segment{SrcPort: 40000, DstPort: 80, Seq: fsm.Seq(seq), Ack: fsm.Seq(ack), Flags: flags, Window: 65535, Payload: []byte(payload)}
	return fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), s)
}

func TestSubmitForms(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("f", fixedISNOptions(1000)).Name
	e.listen(s, server)
	c := ctx(t)

	// Raw TCP bytes plus addresses: the SYN-ACK comes back.
	syn := packet(100, 0, fsm.FlagSYN, "")
	r := must[*pb.SubmitSegmentResponse](t)(e.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s,
		Segment: &pb.SubmitSegmentRequest_Tcp{Tcp: &pb.RawTcpSegment{Segment: syn[20:], SourceIp: "10.0.0.2", DestinationIp: "10.0.0.1"}}}))
	if len(r.Outputs.Segments) != 1 || !hasFlags(r.Outputs.Segments[0], "SYN", "ACK") || string(r.Segment.Raw) != string(syn) {
		t.Fatalf("raw TCP submission: %v", r)
	}
	if r.Segment.Endpoint != s+"/endpoints/2" {
		t.Fatalf("inbound segment demultiplexed to %q", r.Segment.Endpoint)
	}

	// A bad checksum is accepted, logged and dropped, and explained.
	n := e.recordCount(s)
	f := seg(client, server, 101, 1001, []string{"ACK"}, "hello")
	f.Checksum = new(uint32)
	r = e.submit(s, f)
	if r.Segment.ChecksumValid || len(r.Outputs.Segments) != 0 || len(r.Outputs.Explanations) != 1 ||
		r.Outputs.Explanations[0].Code != "BAD_CHECKSUM" || r.Outputs.Explanations[0].Action != pb.Explanation_ACTION_DROPPED {
		t.Fatalf("bad checksum: %v", r)
	}
	if got := e.recordCount(s); got != n+2 {
		t.Fatalf("bad checksum: %d records, want %d (input and output logged)", got, n+2)
	}
	if st := e.endpoint(s + "/endpoints/2").StateName; st != "SYN-RECEIVED" {
		t.Fatalf("after a dropped segment: %s", st)
	}

	// A whole IP packet.
	r = must[*pb.SubmitSegmentResponse](t)(e.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s,
		Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: packet(101, 1001, fsm.FlagACK|fsm.FlagPSH, "hello")}}))
	if r.Segment.PayloadLength != 5 || !r.Segment.ChecksumValid {
		t.Fatalf("IP packet: %v", r.Segment)
	}
	if ep := e.endpoint(s + "/endpoints/2"); ep.StateName != "ESTABLISHED" || ep.BytesReadable != 5 {
		t.Fatalf("after the data: %v", ep)
	}

	// Structured options are encoded the Linux way and decoded back.
	mss, wscale := uint32(1400), uint32(7)
	f = seg("10.0.0.3:40001", server, 7, 0, []string{"syn"}, "")
	f.Options = &pb.SegmentOptions{Mss: &mss, WindowScale: &wscale, SackPermitted: true, Timestamp: &pb.TimestampOption{Val: 5}}
	r = e.submit(s, f)
	o := r.Segment.Options
	if o.GetMss() != 1400 || o.GetWindowScale() != 7 || !o.SackPermitted || o.Timestamp.GetVal() != 5 || o.Text == "" {
		t.Fatalf("options: %v", o)
	}
	if !strings.HasPrefix(r.Segment.Summary, "10.0.0.3:40001 > 10.0.0.1:80 S ") {
		t.Fatalf("summary %q", r.Segment.Summary)
	}
	if v := e.verify(s); !v.Identical {
		t.Fatalf("verify: %v", v)
	}
}

func TestOutboundQueueAndWatch(t *testing.T) {
	e := newEnv(t, Config{Limits: Limits{MaxOutboundQueue: 2}})
	s := e.createSession("q", fixedISNOptions(1000)).Name
	e.listen(s, server)
	c := ctx(t)
	for i := range 3 {
		e.submit(s, seg("10.0.0.2:"+string(rune('1'+i))+"0000", server, 100, 0, []string{"SYN"}, ""))
	}
	// Three SYN-ACKs went out; the queue holds the last two.
	sess := must[*pb.GetSessionResponse](t)(e.sessions.GetSession(c, &pb.GetSessionRequest{Name: s})).Session
	if sess.OutboundQueueLength != 2 || sess.OutboundDropped != 1 {
		t.Fatalf("queue %d, dropped %d", sess.OutboundQueueLength, sess.OutboundDropped)
	}
	l := must[*pb.DrainSegmentsResponse](t)(e.segments.DrainSegments(c, &pb.DrainSegmentsRequest{Parent: s, MaxSegments: 1}))
	if len(l.Segments) != 1 || l.Remaining != 1 || l.Segments[0].DestinationAddress != "10.0.0.2:20000" || l.Segments[0].Direction != pb.Direction_DIRECTION_OUTBOUND {
		t.Fatalf("drain 1: %v", l)
	}

	// A watch first gets what is queued, then follows live.
	w, err := e.segments.WatchSegments(c, &pb.WatchSegmentsRequest{Parent: s, IncludeInbound: true})
	if err != nil {
		t.Fatal(err)
	}
	got := must[*pb.WatchSegmentsResponse](t)(w.Recv())
	if len(got.Segments) != 1 || got.Segments[0].DestinationAddress != "10.0.0.2:30000" {
		t.Fatalf("watch: queued %v", got)
	}
	e.submit(s, seg("10.0.0.2:40000", server, 100, 0, []string{"SYN"}, ""))
	got = must[*pb.WatchSegmentsResponse](t)(w.Recv())
	if len(got.Segments) != 2 || got.Segments[0].Direction != pb.Direction_DIRECTION_INBOUND || !hasFlags(got.Segments[1], "SYN", "ACK") {
		t.Fatalf("watch: live %v", got)
	}
	// While the watch is open the queue stays empty.
	if l := must[*pb.ListSegmentsResponse](t)(e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: s})); len(l.Segments) != 0 {
		t.Fatalf("queue while watched: %v", l)
	}
	// Deleting the session ends the watch cleanly.
	must[*pb.DeleteSessionResponse](t)(e.sessions.DeleteSession(c, &pb.DeleteSessionRequest{Name: s}))
	if _, err := w.Recv(); err != io.EOF {
		t.Fatalf("watch after delete: %v", err)
	}
}

func TestExchangeSegments(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("x", fixedISNOptions(1000)).Name
	e.listen(s, server)
	st, err := e.segments.ExchangeSegments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	n := e.recordCount(s)
	// The second packet is malformed: the first is processed, the rest not.
	if err := st.Send(&pb.ExchangeSegmentsRequest{Parent: s, Sequence: 1, IpPackets: [][]byte{packet(100, 0, fsm.FlagSYN, ""), {0x45}, packet(101, 1001, fsm.FlagACK, "")}}); err != nil {
		t.Fatal(err)
	}
	r := must[*pb.ExchangeSegmentsResponse](t)(st.Recv())
	if r.Sequence != 1 || r.Processed != 1 || !strings.HasPrefix(r.Error, "ip_packets[1]: ipv4") || len(r.Outputs.Segments) != 1 {
		t.Fatalf("first message: %v", r)
	}
	if got := e.recordCount(s); got != n+2 {
		t.Fatalf("records %d, want %d", got, n+2)
	}
	var pkts [][]byte
	pkts = append(pkts, packet(101, 1001, fsm.FlagACK, ""))
	for i := range 10 {
		pkts = append(pkts, packet(101+uint32(i)*10, 1001, fsm.FlagACK, "0123456789"))
	}
	if err := st.Send(&pb.ExchangeSegmentsRequest{Sequence: 2, IpPackets: pkts, RawOnly: true}); err != nil {
		t.Fatal(err)
	}
	r = must[*pb.ExchangeSegmentsResponse](t)(st.Recv())
	if r.Processed != 11 || r.Error != "" || len(r.Outputs.Explanations) != 0 {
		t.Fatalf("second message: %v", r)
	}
	for _, sg := range r.Outputs.Segments {
		if len(sg.Raw) == 0 || sg.Summary != "" {
			t.Fatalf("raw_only segment: %v", sg)
		}
	}
	if ep := e.endpoint(s + "/endpoints/2"); ep.BytesReadable != 100 {
		t.Fatalf("after bulk data: %v", ep)
	}
	if err := st.Send(&pb.ExchangeSegmentsRequest{Parent: "sessions/other"}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	wantCode(t, err, codes.InvalidArgument)
	if v := e.verify(s); !v.Identical {
		t.Fatalf("verify: %v", v)
	}
}

func TestRecords(t *testing.T) {
	e := newEnv(t, Config{})
	s, _ := walkthroughOpen(t, e, "r")
	c := ctx(t)
	total := e.recordCount(s)
	var all []*pb.Record
	tok := ""
	for {
		resp := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(c, &pb.ListRecordsRequest{Parent: s, PageSize: 2, PageToken: tok}))
		all = append(all, resp.Records...)
		if tok = resp.NextPageToken; tok == "" {
			break
		}
	}
	if uint64(len(all)) != total {
		t.Fatalf("paged through %d records, want %d", len(all), total)
	}
	for i, r := range all {
		if r.Index != uint64(i) || r.Summary == "" {
			t.Fatalf("record %d: %v", i, r)
		}
	}
	if all[0].Kind != pb.RecordKind_RECORD_KIND_START || all[0].GetStart().GetOptions().GetFixedIsn() != 1000 {
		t.Fatalf("start record: %v", all[0])
	}
	if all[3].Kind != pb.RecordKind_RECORD_KIND_INPUT || all[3].Segment == nil || !hasFlags(all[3].Segment, "SYN") {
		t.Fatalf("SYN input record: %v", all[3])
	}
	if all[4].Kind != pb.RecordKind_RECORD_KIND_OUTPUT || len(all[4].GetOutput().GetSegments()) != 1 {
		t.Fatalf("SYN output record: %v", all[4])
	}

	// Following: the existing records, then new ones as they come.
	st, err := e.logs.StreamRecords(c, &pb.StreamRecordsRequest{Parent: s, StartIndex: total - 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	got := must[*pb.StreamRecordsResponse](t)(st.Recv())
	if len(got.Records) != 1 || got.Records[0].Index != total-1 {
		t.Fatalf("stream: %v", got)
	}
	must[*pb.AdvanceClockResponse](t)(e.sessions.AdvanceClock(c, &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(time.Second)}}))
	var next []*pb.Record
	for len(next) < 2 {
		got = must[*pb.StreamRecordsResponse](t)(st.Recv())
		next = append(next, got.Records...)
	}
	if next[0].Index != total || next[0].GetInput().GetAdvanceClock() == nil {
		t.Fatalf("followed: %v", next)
	}
}

// TestLogSizeLimit: once a session's log passes the limit, changes are
// refused with RESOURCE_EXHAUSTED and nothing more is written.
func TestLogSizeLimit(t *testing.T) {
	e := newEnv(t, Config{Limits: Limits{MaxLogBytes: 2048}})
	s := e.createSession("l", fixedISNOptions(1000)).Name
	e.listen(s, server)
	c := ctx(t)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = e.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s, Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(client, server, 100, 0, []string{"SYN"}, "")}})
	}
	wantCode(t, err, codes.ResourceExhausted)
	n := e.recordCount(s)
	_, err = e.sessions.AdvanceClock(c, &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(time.Second)}})
	wantCode(t, err, codes.ResourceExhausted)
	if got := e.recordCount(s); got != n {
		t.Fatalf("records %d after a refused call, want %d", got, n)
	}
	// Reading still works.
	e.verify(s)
}

// TestListSegmentsIsSafe: listing is a GET and changes nothing; pages
// follow next_page_token; only DrainSegments takes segments off the queue,
// and a token stays valid across a drain.
func TestListSegmentsIsSafe(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("ls", fixedISNOptions(1000)).Name
	e.listen(s, server)
	c := ctx(t)
	for i := range 3 {
		e.submit(s, seg("10.0.0.2:"+string(rune('1'+i))+"0000", server, 100, 0, []string{"SYN"}, ""))
	}
	dests := func(segs []*pb.Segment) (d []string) {
		for _, sg := range segs {
			d = append(d, sg.DestinationAddress)
		}
		return d
	}
	list := func(size int32, tok string) *pb.ListSegmentsResponse {
		t.Helper()
		return must[*pb.ListSegmentsResponse](t)(e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: s, PageSize: size, PageToken: tok}))
	}
	first, again := list(2, ""), list(2, "")
	if !proto.Equal(first, again) {
		t.Fatalf("the same GET twice gave different pages:\n%v\n%v", first, again)
	}
	if got := dests(first.Segments); len(got) != 2 || got[0] != "10.0.0.2:10000" || got[1] != "10.0.0.2:20000" || first.Remaining != 1 || first.NextPageToken == "" {
		t.Fatalf("first page: %v remaining %d token %q", got, first.Remaining, first.NextPageToken)
	}
	second := list(2, first.NextPageToken)
	if got := dests(second.Segments); len(got) != 1 || got[0] != "10.0.0.2:30000" || second.Remaining != 0 || second.NextPageToken != "" {
		t.Fatalf("second page: %v remaining %d token %q", got, second.Remaining, second.NextPageToken)
	}
	if all := list(0, ""); len(all.Segments) != 3 {
		t.Fatalf("after two lists the queue holds %d segments, want 3", len(all.Segments))
	}
	// Drain one: the first page's token still points at the third segment.
	d := must[*pb.DrainSegmentsResponse](t)(e.segments.DrainSegments(c, &pb.DrainSegmentsRequest{Parent: s, MaxSegments: 1}))
	if got := dests(d.Segments); len(got) != 1 || got[0] != "10.0.0.2:10000" || d.Remaining != 2 {
		t.Fatalf("drain: %v remaining %d", got, d.Remaining)
	}
	if got := dests(list(0, first.NextPageToken).Segments); len(got) != 1 || got[0] != "10.0.0.2:30000" {
		t.Fatalf("token after a drain: %v", got)
	}
	d = must[*pb.DrainSegmentsResponse](t)(e.segments.DrainSegments(c, &pb.DrainSegmentsRequest{Parent: s}))
	if len(d.Segments) != 2 || d.Remaining != 0 || len(list(0, "").Segments) != 0 {
		t.Fatalf("drain all: %v", d)
	}
	_, err := e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: s, PageToken: "garbage!"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.segments.DrainSegments(c, &pb.DrainSegmentsRequest{Parent: s, MaxSegments: -1})
	wantCode(t, err, codes.InvalidArgument)
}

// TestStopStreams: a shutdown ends open streams between messages with
// UNAVAILABLE, so a graceful stop does not wait for them.
func TestStopStreams(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("st", nil).Name
	c := ctx(t)
	ex, err := e.segments.ExchangeSegments(c)
	if err != nil {
		t.Fatal(err)
	}
	ex.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: [][]byte{closedPortPacket(1)}})
	must[*pb.ExchangeSegmentsResponse](t)(ex.Recv())
	must[*pb.DrainSegmentsResponse](t)(e.segments.DrainSegments(c, &pb.DrainSegmentsRequest{Parent: s}))
	w, err := e.segments.WatchSegments(c, &pb.WatchSegmentsRequest{Parent: s})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e.logs.StreamRecords(c, &pb.StreamRecordsRequest{Parent: s, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	must[*pb.StreamRecordsResponse](t)(rs.Recv())
	e.svc.StopStreams()
	_, err = ex.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = w.Recv()
	wantCode(t, err, codes.Unavailable)
	_, err = rs.Recv()
	wantCode(t, err, codes.Unavailable)
	// Unary calls still work until the server stops.
	e.submit(s, seg(client, server, 1, 0, []string{"SYN"}, ""))
}
