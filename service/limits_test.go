package service

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// pastLimit calls try n times past a limit, checks each is refused with
// RESOURCE_EXHAUSTED, and that the heap did not grow by more than slack
// after the first tenth of the attempts (which warm up buffer pools; the
// test's clients share the process): a refused request holds nothing.
func pastLimit(t *testing.T, n int, slack int64, try func() error) {
	t.Helper()
	var before int64
	for i := range n {
		if i == n/10 {
			before = liveHeap()
		}
		if err := try(); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("attempt %d past the limit: %v, want RESOURCE_EXHAUSTED", i, err)
		}
	}
	if grow := liveHeap() - before; grow > slack {
		t.Errorf("the heap grew by %d KiB over %d refused requests", grow>>10, n-n/10)
	}
}

// rawPacket builds an IPv4 packet from 10.0.0.2:port to the test server.
func rawPacket(port uint16, seq, ack uint32, flags fsm.Flags, payload []byte) []byte {
	s := fsm.Segment{SrcPort: port, DstPort: 80, Seq: fsm.Seq(seq), Ack: fsm.Seq(ack), Flags: flags, Window: 65535, Payload: payload}
	return fsm.AppendPacket(nil, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), &s)
}

func (e *env) submitRaw(session string, pkt []byte) (*pb.SubmitSegmentResponse, error) {
	return e.segments.SubmitSegment(ctx(e.t), &pb.SubmitSegmentRequest{Parent: session, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: pkt}})
}

// established opens a connection from 10.0.0.2:port to the session's
// listener on 10.0.0.1:80 (fixed ISN 1000) and returns its name.
func (e *env) established(session string, port uint16) string {
	e.t.Helper()
	r := must[*pb.SubmitSegmentResponse](e.t)(e.submitRaw(session, rawPacket(port, 100, 0, fsm.FlagSYN, nil)))
	conn := r.Outputs.Transitions[0].Endpoint
	must[*pb.SubmitSegmentResponse](e.t)(e.submitRaw(session, rawPacket(port, 101, 1001, fsm.FlagACK, nil)))
	return conn
}

// The rule: every resource a client can make the server hold has a limit;
// reaching it gives RESOURCE_EXHAUSTED (or, where the API says so, a
// bounded discard that is counted), changes nothing, and repeated attempts
// past it do not grow the server's memory.
func TestLimits(t *testing.T) {
	t.Run("sessions", func(t *testing.T) {
		e := newEnv(t, Config{Fsync: store.FsyncNever, Limits: Limits{MaxSessions: 5}})
		for range 5 {
			e.createSession("", nil)
		}
		pastLimit(t, 200, 256<<10, func() error {
			_, err := e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{})
			return err
		})
		if n := e.svc.SessionCount(); n != 5 {
			t.Fatalf("%d sessions", n)
		}
		if logs, _ := filepath.Glob(filepath.Join(e.dir, "*.log")); len(logs) != 5 {
			t.Fatalf("%d log files for 5 sessions", len(logs))
		}
	})

	t.Run("endpoints per session", func(t *testing.T) {
		e := newMemEnv(t, Config{Limits: Limits{MaxEndpoints: 4}})
		s := e.createSession("s", fixedISNOptions(1000)).Name
		e.listen(s, "10.0.0.1:80")
		e.established(s, 40000)
		e.established(s, 40001)
		e.listen(s, "10.0.0.1:81")
		records := e.recordCount(s)
		pastLimit(t, 200, 256<<10, func() error {
			_, err := e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{Parent: s,
				Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: "10.0.0.1:5000", RemoteAddress: "10.0.0.9:80"}}})
			return err
		})
		if got := e.recordCount(s); got != records {
			t.Fatalf("refused creations were logged: %d records, was %d", got, records)
		}
		// Passive opens count too: a SYN past the limit is dropped.
		r := must[*pb.SubmitSegmentResponse](t)(e.submitRaw(s, rawPacket(40002, 100, 0, fsm.FlagSYN, nil)))
		if len(r.Outputs.Transitions) != 0 || len(r.Outputs.Segments) != 0 {
			t.Fatalf("a SYN past the endpoint limit opened a connection: %v", r.Outputs)
		}
	})

	t.Run("bytes buffered per connection", func(t *testing.T) {
		e := newMemEnv(t, Config{Limits: Limits{MaxBufferBytes: 8192}})
		for _, o := range []*pb.SessionOptions{{ReceiveWindow: 8193}, {SendBuffer: 1 << 30}} {
			if _, err := e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{Session: &pb.Session{Options: o}}); status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("options %v: %v", o, err)
			}
		}
		opts := fixedISNOptions(1000)
		opts.ReceiveWindow, opts.SendBuffer = 8192, 8192
		s := e.createSession("s", opts).Name
		e.listen(s, "10.0.0.1:80")
		conn := e.established(s, 40000)
		// The peer sends 64 KiB into an 8 KiB window: the receiver keeps
		// what fits and drops the rest.
		chunk := bytes.Repeat([]byte("x"), 1000)
		for i := range 64 {
			if _, err := e.submitRaw(s, rawPacket(40000, 101+uint32(i*1000), 1001, fsm.FlagACK, chunk)); err != nil {
				t.Fatal(err)
			}
		}
		if ep := e.endpoint(conn); ep.BytesReadable > 8192 {
			t.Fatalf("%d bytes readable, above the 8 KiB buffer", ep.BytesReadable)
		}
		// The application sends 64 KiB into an 8 KiB send buffer: only
		// what fits is accepted, then the call is refused.
		accepted := uint32(0)
		for range 8 {
			r, err := e.endpoints.SendData(ctx(t), &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Data{Data: bytes.Repeat([]byte("y"), 8192)}})
			if status.Code(err) == codes.ResourceExhausted {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			accepted += r.BytesAccepted
		}
		pastLimit(t, 100, 256<<10, func() error {
			_, err := e.endpoints.SendData(ctx(t), &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Data{Data: []byte("more")}})
			return err
		})
		if ep := e.endpoint(conn); accepted > 8192 || ep.BytesUnsent+ep.BytesUnacknowledged > 8192 {
			t.Fatalf("accepted %d bytes, buffered %d: above the 8 KiB send buffer", accepted, ep.BytesUnsent+ep.BytesUnacknowledged)
		}
	})

	t.Run("outbound queue", func(t *testing.T) {
		// A full queue discards its oldest segment and counts it
		// (Session.outbound_dropped): the queue is the wire, and a wire
		// drops; the call that emitted the segment succeeded.
		e := newMemEnv(t, Config{Limits: Limits{MaxOutboundQueue: 8}})
		s := e.createSession("s", nil).Name
		before := liveHeap()
		for i := range 500 {
			if _, err := e.submitRaw(s, rawPacket(uint16(1000+i), 1, 0, fsm.FlagSYN, nil)); err != nil { // closed port: RST
				t.Fatal(err)
			}
		}
		sv := must[*pb.GetSessionResponse](t)(e.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: s})).Session
		if sv.OutboundQueueLength != 8 || sv.OutboundDropped != 492 {
			t.Fatalf("queue %d, dropped %d; want 8 and 492", sv.OutboundQueueLength, sv.OutboundDropped)
		}
		if grow := liveHeap() - before; grow > 1<<20 {
			t.Errorf("the heap grew by %d KiB", grow>>10)
		}
	})

	t.Run("watchers per session and a watcher that falls behind", func(t *testing.T) {
		e := newMemEnv(t, Config{Limits: Limits{MaxWatchers: 2}})
		s := e.createSession("s", nil).Name
		wctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var streams []pb.SegmentService_WatchSegmentsClient
		for range 2 {
			st, err := e.segments.WatchSegments(wctx, &pb.WatchSegmentsRequest{Parent: s})
			if err != nil {
				t.Fatal(err)
			}
			streams = append(streams, st)
		}
		waitUntil(t, func() bool {
			ss, _ := e.svc.lookup(context.Background(), "s")
			ss.mu.Lock()
			defer ss.mu.Unlock()
			return len(ss.watchers) == 2
		})
		st, err := e.segments.WatchSegments(wctx, &pb.WatchSegmentsRequest{Parent: s})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("third watcher: %v", err)
		}
		// Nobody reads: after the transport's and the watcher's buffers
		// fill, the server drops the watcher with RESOURCE_EXHAUSTED
		// instead of buffering without bound.
		big := bytes.Repeat([]byte("z"), 1000)
		for i := range 3000 {
			if _, err := e.submitRaw(s, rawPacket(uint16(1000+i%60000), 1, 0, fsm.FlagACK, big)); err != nil {
				t.Fatal(err)
			}
		}
		var last error
		for range 5000 {
			if _, last = streams[0].Recv(); last != nil {
				break
			}
		}
		if status.Code(last) != codes.ResourceExhausted {
			t.Fatalf("the watcher that fell behind ended with %v", last)
		}
	})

	t.Run("request and message size", func(t *testing.T) {
		const max = 64 << 10
		e := newMemEnv(t, Config{Limits: Limits{MaxMessageBytes: max, MaxPacketsPerMessage: 16}})
		s := e.createSession("s", fixedISNOptions(1000)).Name
		e.listen(s, "10.0.0.1:80")
		conn := e.established(s, 40000)
		// The service's own check (the binary also sets gRPC's
		// MaxRecvMsgSize to the same limit; see below).
		// 270 refused 64 KiB requests held would be 17 MiB; gRPC's buffer
		// pools move the heap by a few MiB under load, so allow 4.
		pastLimit(t, 300, 4<<20, func() error {
			_, err := e.endpoints.SendData(ctx(t), &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Data{Data: make([]byte, max+1)}})
			return err
		})
		st, err := e.segments.ExchangeSegments(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pkts := make([][]byte, 17)
		for i := range pkts {
			pkts[i] = rawPacket(40000, 101, 1001, fsm.FlagACK, nil)
		}
		if err := st.Send(&pb.ExchangeSegmentsRequest{Parent: s, IpPackets: pkts}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("17 packets in one message: %v", err)
		}

		// gRPC refuses a larger message before decoding it.
		lis := bufconn.Listen(1 << 20)
		srv := grpc.NewServer(grpc.MaxRecvMsgSize(max))
		e.svc.Register(srv)
		go srv.Serve(lis)
		defer srv.Stop()
		cc, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		pastLimit(t, 300, 4<<20, func() error {
			_, err := pb.NewSegmentServiceClient(cc).SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: make([]byte, max+1)}})
			return err
		})
	})

	t.Run("log size per session", func(t *testing.T) {
		const max = 16 << 10
		e := newEnv(t, Config{Fsync: store.FsyncNever, Limits: Limits{MaxLogBytes: max}})
		s := e.createSession("s", nil).Name
		var err error
		for i := 0; i < 10000 && err == nil; i++ {
			_, err = e.submitRaw(s, rawPacket(uint16(1000+i), 1, 0, fsm.FlagSYN, nil))
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("filling the log: %v", err)
		}
		records := e.recordCount(s)
		pastLimit(t, 200, 256<<10, func() error {
			_, err := e.submitRaw(s, rawPacket(2, 1, 0, fsm.FlagSYN, nil))
			return err
		})
		fi, err := os.Stat(filepath.Join(e.dir, "s.log"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > max+1024 || e.recordCount(s) != records {
			t.Fatalf("log %d bytes, %d records (was %d): the limit is %d", fi.Size(), e.recordCount(s), records, max)
		}
		// Reading and deleting still work.
		if _, err := e.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("records per page", func(t *testing.T) {
		// Page sizes above the maximum are lowered to it (AIP-158), not
		// refused; a page never holds more.
		e := newMemEnv(t, Config{Limits: Limits{MaxPageSize: 10}})
		s := e.createSession("s", nil).Name
		for i := range 20 {
			e.submitRaw(s, rawPacket(uint16(1000+i), 1, 0, fsm.FlagSYN, nil))
		}
		for range 12 {
			e.createSession("", nil)
		}
		r := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(ctx(t), &pb.ListRecordsRequest{Parent: s, PageSize: 1 << 30}))
		l := must[*pb.ListSessionsResponse](t)(e.sessions.ListSessions(ctx(t), &pb.ListSessionsRequest{PageSize: 1 << 30}))
		if len(r.Records) != 10 || r.NextPageToken == "" || len(l.Sessions) != 10 || l.NextPageToken == "" {
			t.Fatalf("%d records, %d sessions in a page; want 10 each and a next page", len(r.Records), len(l.Sessions))
		}
	})
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
