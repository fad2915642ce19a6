package service

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/store"
)

// TestEndpointAtRecord: a connection's whole life (handshake, data both
// ways, a delayed ACK, a close, TIME-WAIT) with the endpoint read after
// every call; GetEndpoint at_record=N, asked afterwards, gives exactly what
// the live read gave after record N, with snapshots every 4 records (so
// that answers come from snapshots, from re-runs past them, and from the
// start) and asked out of order. Before the connection existed it is
// NOT_FOUND; past the log's end INVALID_ARGUMENT.
func TestEndpointAtRecord(t *testing.T) {
	old := snapshotEvery
	snapshotEvery = 4
	t.Cleanup(func() { snapshotEvery = old })
	e := newEnv(t, Config{})
	const s = "sessions/tt"
	e.createSession("tt", fixedISNOptions(1000))
	e.listen(s, "10.0.0.1:80")
	const peer, us = "10.0.0.2:40000", "10.0.0.1:80"
	type seen struct {
		at uint64
		ep *pb.Endpoint
	}
	var views []seen
	look := func() {
		n := e.recordCount(s) - 1
		for _, name := range []string{s + "/endpoints/1", s + "/endpoints/2"} {
			resp, err := e.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: name})
			if err == nil {
				views = append(views, seen{n, resp.Endpoint})
			}
		}
	}
	look()
	e.submit(s, seg(peer, us, 100, 0, []string{"SYN"}, ""))
	look()
	e.submit(s, seg(peer, us, 101, 1001, []string{"ACK"}, "hello"))
	look()
	must[*pb.AcceptConnectionResponse](t)(e.endpoints.AcceptConnection(ctx(t), &pb.AcceptConnectionRequest{Name: s + "/endpoints/1"}))
	look()
	must[*pb.SendDataResponse](t)(e.endpoints.SendData(ctx(t), &pb.SendDataRequest{Name: s + "/endpoints/2", Payload: &pb.SendDataRequest_Text{Text: "hi there"}}))
	look()
	must[*pb.AdvanceClockResponse](t)(e.sessions.AdvanceClock(ctx(t), &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(300 * time.Millisecond)}}))
	look()
	e.submit(s, seg(peer, us, 106, 1009, []string{"ACK"}, ""))
	look()
	must[*pb.ReceiveDataResponse](t)(e.endpoints.ReceiveData(ctx(t), &pb.ReceiveDataRequest{Name: s + "/endpoints/2"}))
	look()
	must[*pb.CloseEndpointResponse](t)(e.endpoints.CloseEndpoint(ctx(t), &pb.CloseEndpointRequest{Name: s + "/endpoints/2"}))
	look()
	e.submit(s, seg(peer, us, 106, 1010, []string{"FIN", "ACK"}, ""))
	look()
	if len(views) < 15 {
		t.Fatalf("only %d views", len(views))
	}
	// Ask newest first, then oldest first: snapshots are made by the first
	// question and used by the later ones.
	for _, order := range []string{"newest first", "oldest first"} {
		for i := range views {
			v := views[len(views)-1-i]
			if order == "oldest first" {
				v = views[i]
			}
			resp, err := e.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: v.ep.Name, AtRecord: proto.Uint64(v.at)})
			if err != nil {
				t.Fatalf("%s: GetEndpoint(%s, at_record=%d): %v", order, v.ep.Name, v.at, err)
			}
			if !proto.Equal(resp.Endpoint, v.ep) {
				t.Errorf("%s: %s at record %d:\n got %v\nwant %v", order, v.ep.Name, v.at, resp.Endpoint, v.ep)
			}
		}
	}
	last := views[len(views)-1]
	if last.ep.StateName != "TIME-WAIT" {
		t.Errorf("the connection ended in %s, want TIME-WAIT", last.ep.StateName)
	}
	_, err := e.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: s + "/endpoints/2", AtRecord: proto.Uint64(2)})
	wantCode(t, err, codes.NotFound)
	_, err = e.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: s + "/endpoints/2", AtRecord: proto.Uint64(e.recordCount(s))})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.endpoints.GetEndpoint(ctx(t), &pb.GetEndpointRequest{Name: s + "/endpoints/9", AtRecord: proto.Uint64(3)})
	wantCode(t, err, codes.NotFound)
}

// BenchmarkEndpointAtRecord asks for a connection's TCB at random records
// of a session of 100 000 log records (50 000 data segments in order, each
// acknowledged): the first question re-runs the log once, keeping
// snapshots; every later one re-runs from the nearest snapshot. The
// figure is the time per question after the first (cold: the first alone).
func BenchmarkEndpointAtRecord(b *testing.B) {
	e := benchEnv(b, store.FsyncNever)
	const s = "sessions/long"
	e.createSession("long", fixedISNOptions(1000))
	must[*pb.CreateEndpointResponse](e.t)(e.endpoints.CreateEndpoint(b.Context(), &pb.CreateEndpointRequest{
		Parent: s, Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:80"}}}))
	const peer, us = "10.0.0.2:40000", "10.0.0.1:80"
	e.submit(s, seg(peer, us, 100, 0, []string{"SYN"}, ""))
	e.submit(s, seg(peer, us, 101, 1001, []string{"ACK"}, ""))
	for i := 0; e.recordCount(s) < 100_000; i++ {
		var req []*pb.SubmitSegmentRequest
		for j := range 500 {
			seq := uint32(101 + (i*500 + j))
			req = append(req, &pb.SubmitSegmentRequest{Parent: s, Segment: &pb.SubmitSegmentRequest_Fields{Fields: seg(peer, us, seq, 1001, []string{"PSH", "ACK"}, "x")}})
		}
		for _, r := range req {
			if _, err := e.segments.SubmitSegment(b.Context(), r); err != nil {
				b.Fatal(err)
			}
		}
		if i%10 == 9 { // read what arrived, so the window stays open
			must[*pb.ReceiveDataResponse](e.t)(e.endpoints.ReceiveData(b.Context(), &pb.ReceiveDataRequest{Name: s + "/endpoints/2"}))
		}
	}
	total := e.recordCount(s)
	ask := func(n uint64) {
		if _, err := e.endpoints.GetEndpoint(b.Context(), &pb.GetEndpointRequest{Name: s + "/endpoints/2", AtRecord: proto.Uint64(n)}); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	ask(total - 1)
	first := time.Since(t0)
	b.ResetTimer() // (which also forgets metrics reported before it)
	for i := range b.N {
		ask(uint64(10+i*7919) % total)
	}
	b.ReportMetric(float64(first.Milliseconds()), "first-ms")
	b.ReportMetric(float64(total), "records")
}
