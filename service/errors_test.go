package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestBadRequests sends requests the service must refuse and checks the
// exact status of each and that nothing changed: not the sessions, not
// their endpoints, not a single log record.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, Config{Limits: Limits{MaxSessions: 3, MaxEndpoints: 3, MaxMessageBytes: 1024}})
	c := ctx(t)
	const s = "sessions/t"
	e.createSession("t", fixedISNOptions(1000))
	e.createSession("u", nil)
	e.createSession("v", nil)
	e.listen(s, server) // endpoint 1
	connect := func(alias, local string) {
		t.Helper()
		must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(c, &pb.CreateEndpointRequest{Parent: s, EndpointId: alias,
			Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: local, RemoteAddress: "10.0.0.9:80"}}}))
	}
	connect("dead", "10.0.0.1:5001")
	must[*pb.AbortEndpointResponse](t)(e.endpoints.AbortEndpoint(c, &pb.AbortEndpointRequest{Name: s + "/endpoints/dead"}))
	e.submit(s, seg(client, server, 100, 0, []string{"SYN"}, ""))         // connection 3
	e.submit(s, seg(client, server, 101, 1001, []string{"ACK"}, "hello")) // ESTABLISHED, 5 bytes unread
	must[*pb.AcceptConnectionResponse](t)(e.endpoints.AcceptConnection(c, &pb.AcceptConnectionRequest{Name: s + "/endpoints/1"}))
	connect("out", "10.0.0.1:5002") // SYN-SENT; now 3 live endpoints, the limit

	l, conn := s+"/endpoints/1", s+"/endpoints/3"
	listen := func(parent, id, addr string) error {
		_, err := e.endpoints.CreateEndpoint(c, &pb.CreateEndpointRequest{Parent: parent, EndpointId: id,
			Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: addr}}})
		return err
	}
	createSession := func(id string, o *pb.SessionOptions) error {
		_, err := e.sessions.CreateSession(c, &pb.CreateSessionRequest{SessionId: id, Session: &pb.Session{Options: o}})
		return err
	}
	submit := func(parent string, r *pb.SubmitSegmentRequest) error {
		r.Parent = parent
		_, err := e.segments.SubmitSegment(c, r)
		return err
	}
	fields := func(f *pb.SegmentFields) *pb.SubmitSegmentRequest {
		return &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_Fields{Fields: f}}
	}
	send := func(name string, data []byte) error {
		_, err := e.endpoints.SendData(c, &pb.SendDataRequest{Name: name, Payload: &pb.SendDataRequest_Data{Data: data}})
		return err
	}
	advance := func(r *pb.AdvanceClockRequest) error {
		r.Name = s
		_, err := e.sessions.AdvanceClock(c, r)
		return err
	}
	ws := int32(15)

	cases := []struct {
		name string
		call func() error
		code codes.Code
		msg  string // substring of the message, when it matters
	}{
		// Sessions.
		{"session id with capitals", func() error { return createSession("Bad_ID", nil) }, codes.InvalidArgument, "session_id"},
		{"session id too long", func() error { return createSession(strings.Repeat("a", 64), nil) }, codes.InvalidArgument, "session_id"},
		{"session exists", func() error { return createSession("t", nil) }, codes.AlreadyExists, ""},
		{"session limit", func() error { return createSession("w", nil) }, codes.ResourceExhausted, "3 sessions"},
		{"receive window above the limit", func() error {
			return createSession("x", &pb.SessionOptions{ReceiveWindow: DefaultMaxBufferBytes + 1})
		}, codes.ResourceExhausted, "receive_window"},
		{"send buffer above the limit", func() error {
			return createSession("x", &pb.SessionOptions{SendBuffer: DefaultMaxBufferBytes + 1})
		}, codes.ResourceExhausted, "send_buffer"},
		{"window scale 15", func() error { return createSession("x", &pb.SessionOptions{WindowScale: &ws}) }, codes.InvalidArgument, "window_scale"},
		{"delayed ACK timeout 600 ms", func() error {
			return createSession("x", &pb.SessionOptions{DelayedAckTimeout: durationpb.New(600 * time.Millisecond)})
		}, codes.InvalidArgument, "delayed_ack_timeout"},
		{"unknown clock mode", func() error { return createSession("x", &pb.SessionOptions{ClockMode: 7}) }, codes.InvalidArgument, "clock_mode"},
		{"fixed ISN without fixed mode", func() error { return createSession("x", &pb.SessionOptions{FixedIsn: 5}) }, codes.InvalidArgument, "fixed_isn"},
		{"min RTO above max RTO", func() error {
			return createSession("x", &pb.SessionOptions{MinRto: durationpb.New(2 * time.Second), MaxRto: durationpb.New(time.Second)})
		}, codes.InvalidArgument, "min_rto"},
		{"get unknown session", func() error {
			_, err := e.sessions.GetSession(c, &pb.GetSessionRequest{Name: "sessions/nope"})
			return err
		}, codes.NotFound, "sessions/nope"},
		{"get with a malformed name", func() error {
			_, err := e.sessions.GetSession(c, &pb.GetSessionRequest{Name: "foo/bar"})
			return err
		}, codes.InvalidArgument, "name"},
		{"delete unknown session", func() error {
			_, err := e.sessions.DeleteSession(c, &pb.DeleteSessionRequest{Name: "sessions/nope"})
			return err
		}, codes.NotFound, ""},
		{"list sessions with a negative page size", func() error {
			_, err := e.sessions.ListSessions(c, &pb.ListSessionsRequest{PageSize: -1})
			return err
		}, codes.InvalidArgument, "page_size"},
		{"list sessions with a forged page token", func() error {
			_, err := e.sessions.ListSessions(c, &pb.ListSessionsRequest{PageToken: "garbage!"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"advance without a target", func() error { return advance(&pb.AdvanceClockRequest{}) }, codes.InvalidArgument, "target"},
		{"advance by a negative duration", func() error {
			return advance(&pb.AdvanceClockRequest{Target: &pb.AdvanceClockRequest_By{By: durationpb.New(-time.Second)}})
		}, codes.InvalidArgument, "by"},
		{"advance to an invalid duration", func() error {
			return advance(&pb.AdvanceClockRequest{Target: &pb.AdvanceClockRequest_To{To: &durationpb.Duration{Seconds: 1, Nanos: -1}}})
		}, codes.InvalidArgument, "to"},

		// Endpoints.
		{"listen on a bound address", func() error { return listen(s, "", server) }, codes.AlreadyExists, "connection already exists"},
		{"endpoint limit", func() error { return listen(s, "", "10.0.0.1:81") }, codes.ResourceExhausted, "too many endpoints"},
		{"listen without a port", func() error { return listen(s, "", "10.0.0.1") }, codes.InvalidArgument, "listen.local_address"},
		{"listen on port 0", func() error { return listen(s, "", "10.0.0.1:0") }, codes.InvalidArgument, "port 0"},
		{"alias starting with a digit", func() error { return listen(s, "1abc", "10.0.0.1:82") }, codes.InvalidArgument, "endpoint_id"},
		{"alias taken", func() error { return listen(s, "out", "10.0.0.1:82") }, codes.AlreadyExists, "out"},
		{"create without a mode", func() error {
			_, err := e.endpoints.CreateEndpoint(c, &pb.CreateEndpointRequest{Parent: s})
			return err
		}, codes.InvalidArgument, "mode"},
		{"connect across address families", func() error {
			_, err := e.endpoints.CreateEndpoint(c, &pb.CreateEndpointRequest{Parent: s,
				Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: "10.0.0.1:1", RemoteAddress: "[::1]:80"}}})
			return err
		}, codes.InvalidArgument, "family"},
		{"create in an unknown session", func() error { return listen("sessions/nope", "", server) }, codes.NotFound, ""},
		{"get an endpoint never created", func() error {
			_, err := e.endpoints.GetEndpoint(c, &pb.GetEndpointRequest{Name: s + "/endpoints/99"})
			return err
		}, codes.NotFound, "endpoints/99"},
		{"get with a malformed endpoint name", func() error {
			_, err := e.endpoints.GetEndpoint(c, &pb.GetEndpointRequest{Name: s + "/conns/1"})
			return err
		}, codes.InvalidArgument, "name"},
		{"accept on a connection", func() error {
			_, err := e.endpoints.AcceptConnection(c, &pb.AcceptConnectionRequest{Name: conn})
			return err
		}, codes.FailedPrecondition, "endpoint is not a listener"},
		{"accept with an empty queue", func() error {
			_, err := e.endpoints.AcceptConnection(c, &pb.AcceptConnectionRequest{Name: l})
			return err
		}, codes.FailedPrecondition, "no connection waiting to be accepted"},
		{"send on a listener", func() error { return send(l, []byte("x")) }, codes.FailedPrecondition, "endpoint is a listener"},
		{"send on an aborted connection", func() error { return send(s+"/endpoints/dead", []byte("x")) }, codes.FailedPrecondition, "connection does not exist"},
		{"send to an unknown endpoint", func() error { return send(s+"/endpoints/nope", []byte("x")) }, codes.NotFound, ""},
		{"send without a payload", func() error {
			_, err := e.endpoints.SendData(c, &pb.SendDataRequest{Name: conn})
			return err
		}, codes.InvalidArgument, "payload"},
		{"send more than a message may carry", func() error { return send(conn, make([]byte, 2000)) }, codes.ResourceExhausted, "limit"},
		{"receive on a listener", func() error {
			_, err := e.endpoints.ReceiveData(c, &pb.ReceiveDataRequest{Name: l})
			return err
		}, codes.FailedPrecondition, "listener"},
		{"shutdown a listener", func() error {
			_, err := e.endpoints.ShutdownEndpoint(c, &pb.ShutdownEndpointRequest{Name: l})
			return err
		}, codes.FailedPrecondition, "listener"},
		{"close an aborted connection", func() error {
			_, err := e.endpoints.CloseEndpoint(c, &pb.CloseEndpointRequest{Name: s + "/endpoints/dead"})
			return err
		}, codes.FailedPrecondition, "connection does not exist"},
		{"abort an aborted connection", func() error {
			_, err := e.endpoints.AbortEndpoint(c, &pb.AbortEndpointRequest{Name: s + "/endpoints/dead"})
			return err
		}, codes.FailedPrecondition, "connection does not exist"},
		{"list endpoints of an unknown session", func() error {
			_, err := e.endpoints.ListEndpoints(c, &pb.ListEndpointsRequest{Parent: "sessions/nope"})
			return err
		}, codes.NotFound, ""},

		// Segments.
		{"IP packet of garbage", func() error {
			return submit(s, &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: []byte{0x45, 1, 2}}})
		}, codes.InvalidArgument, "ipv4 header length"},
		{"IP packet of version 7", func() error {
			return submit(s, &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: make([]byte, 40)}})
		}, codes.InvalidArgument, "ip version"},
		{"TCP bytes too short", func() error {
			return submit(s, &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_Tcp{Tcp: &pb.RawTcpSegment{
				Segment: make([]byte, 10), SourceIp: "10.0.0.2", DestinationIp: "10.0.0.1"}}})
		}, codes.InvalidArgument, "tcp header length"},
		{"TCP bytes with a bad address", func() error {
			return submit(s, &pb.SubmitSegmentRequest{Segment: &pb.SubmitSegmentRequest_Tcp{Tcp: &pb.RawTcpSegment{
				Segment: make([]byte, 20), SourceIp: "10.0.0.300", DestinationIp: "10.0.0.1"}}})
		}, codes.InvalidArgument, "tcp.source_ip"},
		{"unknown flag", func() error { return submit(s, fields(seg(client, server, 1, 0, []string{"SYNN"}, ""))) }, codes.InvalidArgument, "fields.flags[0]"},
		{"window too large", func() error {
			f := seg(client, server, 1, 0, []string{"ACK"}, "")
			f.Window = 70000
			return submit(s, fields(f))
		}, codes.InvalidArgument, "fields.window"},
		{"five SACK blocks", func() error {
			f := seg(client, server, 1, 0, []string{"ACK"}, "")
			f.Options = &pb.SegmentOptions{SackBlocks: make([]*pb.SackBlock, 5)}
			return submit(s, fields(f))
		}, codes.InvalidArgument, "sack_blocks"},
		{"segment across address families", func() error { return submit(s, fields(seg(client, "[::1]:80", 1, 0, nil, ""))) }, codes.InvalidArgument, "family"},
		{"no segment", func() error { return submit(s, &pb.SubmitSegmentRequest{}) }, codes.InvalidArgument, "segment"},
		{"segment to an unknown session", func() error { return submit("sessions/nope", fields(seg(client, server, 1, 0, nil, ""))) }, codes.NotFound, ""},
		{"drain with a negative page size", func() error {
			_, err := e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: s, PageSize: -2})
			return err
		}, codes.InvalidArgument, "page_size"},

		// The log.
		{"records of a malformed parent", func() error {
			_, err := e.logs.ListRecords(c, &pb.ListRecordsRequest{Parent: "sessions/"})
			return err
		}, codes.InvalidArgument, "parent"},
		{"records with a forged page token", func() error {
			_, err := e.logs.ListRecords(c, &pb.ListRecordsRequest{Parent: s, PageToken: encodePageToken("x")})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"verify an unknown session", func() error {
			_, err := e.logs.VerifySession(c, &pb.VerifySessionRequest{Name: "sessions/nope"})
			return err
		}, codes.NotFound, ""},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	before := e.snapshot()
	records := e.recordCount(s)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
			if n := e.recordCount(s); n != records {
				t.Fatalf("the session's log grew from %d to %d records", records, n)
			}
			after := e.snapshot()
			if len(after) != len(before) {
				t.Fatalf("%d resources after, %d before", len(after), len(before))
			}
			for name, b := range before {
				if !proto.Equal(after[name], b) {
					t.Fatalf("%s changed:\n before %v\n after  %v", name, b, after[name])
				}
			}
		})
	}
}

// TestRealtimeRefusesAdvance: AdvanceClock is for VIRTUAL sessions.
func TestRealtimeRefusesAdvance(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("rt", &pb.SessionOptions{ClockMode: pb.ClockMode_CLOCK_MODE_REALTIME})
	_, err := e.sessions.AdvanceClock(context.Background(), &pb.AdvanceClockRequest{Name: s.Name, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(time.Second)}})
	wantCode(t, err, codes.FailedPrecondition)
}

// TestErrorDetails: every refusal carries a google.rpc.ErrorInfo with a
// stable reason, the domain and the resource the call named, and an
// INVALID_ARGUMENT also a google.rpc.BadRequest naming the bad field
// (AIP-193), so that a program branches on the reason, not the message.
func TestErrorDetails(t *testing.T) {
	e := newEnv(t, Config{})
	c := ctx(t)
	const s = "sessions/d"
	e.createSession("d", fixedISNOptions(1000))
	e.listen(s, server) // endpoint 1
	e.submit(s, seg(client, server, 100, 0, []string{"SYN"}, ""))
	e.submit(s, seg(client, server, 101, 1001, []string{"ACK"}, ""))
	must[*pb.AcceptConnectionResponse](t)(e.endpoints.AcceptConnection(c, &pb.AcceptConnectionRequest{Name: s + "/endpoints/1"}))
	must[*pb.CloseEndpointResponse](t)(e.endpoints.CloseEndpoint(c, &pb.CloseEndpointRequest{Name: s + "/endpoints/2"}))

	cases := []struct {
		name     string
		call     func() error
		code     codes.Code
		reason   string
		resource string
		field    string // the BadRequest field, for INVALID_ARGUMENT
	}{
		{"unknown session", func() error {
			_, err := e.sessions.GetSession(c, &pb.GetSessionRequest{Name: "sessions/nope"})
			return err
		}, codes.NotFound, "SESSION_NOT_FOUND", "sessions/nope", ""},
		{"unknown endpoint", func() error {
			_, err := e.endpoints.GetEndpoint(c, &pb.GetEndpointRequest{Name: s + "/endpoints/9"})
			return err
		}, codes.NotFound, "ENDPOINT_NOT_FOUND", s + "/endpoints/9", ""},
		{"send after close", func() error {
			_, err := e.endpoints.SendData(c, &pb.SendDataRequest{Name: s + "/endpoints/2", Payload: &pb.SendDataRequest_Text{Text: "x"}})
			return err
		}, codes.FailedPrecondition, "CONNECTION_CLOSING", s + "/endpoints/2", ""},
		{"accept with nothing queued", func() error {
			_, err := e.endpoints.AcceptConnection(c, &pb.AcceptConnectionRequest{Name: s + "/endpoints/1"})
			return err
		}, codes.FailedPrecondition, "NO_CONNECTION_WAITING", s + "/endpoints/1", ""},
		{"session exists", func() error {
			_, err := e.sessions.CreateSession(c, &pb.CreateSessionRequest{SessionId: "d"})
			return err
		}, codes.AlreadyExists, "SESSION_ALREADY_EXISTS", "", ""},
		{"mss out of range", func() error {
			_, err := e.sessions.CreateSession(c, &pb.CreateSessionRequest{SessionId: "x", Session: &pb.Session{Options: &pb.SessionOptions{Mss: 70000}}})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", "", "session.options.mss"},
		{"unknown flag", func() error {
			_, err := e.segments.SubmitSegment(c, &pb.SubmitSegmentRequest{Parent: s, Segment: &pb.SubmitSegmentRequest_Fields{Fields: &pb.SegmentFields{
				SourceAddress: client, DestinationAddress: server, Flags: []string{"SYN", "SYNN"}}}})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", s, "fields.flags[1]"},
		{"bad page token", func() error {
			_, err := e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: s, PageToken: "zzz"})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", s, "page_token"},
		{"advance with no target", func() error {
			_, err := e.sessions.AdvanceClock(c, &pb.AdvanceClockRequest{Name: s})
			return err
		}, codes.InvalidArgument, "INVALID_ARGUMENT", s, "target"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code %v (%v), want %v", st.Code(), err, tc.code)
			}
			var info *errdetails.ErrorInfo
			var br *errdetails.BadRequest
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					info = d
				case *errdetails.BadRequest:
					br = d
				}
			}
			if info == nil || info.Reason != tc.reason || info.Domain != ErrorDomain || info.Metadata["resource"] != tc.resource {
				t.Fatalf("ErrorInfo %v, want reason %s domain %s resource %q", info, tc.reason, ErrorDomain, tc.resource)
			}
			if tc.code != codes.InvalidArgument {
				if br != nil {
					t.Fatalf("BadRequest on a %v: %v", tc.code, br)
				}
				return
			}
			if br == nil || len(br.FieldViolations) != 1 || br.FieldViolations[0].Field != tc.field || br.FieldViolations[0].Description == "" {
				t.Fatalf("BadRequest %v, want one violation of %s", br, tc.field)
			}
			if !strings.HasPrefix(st.Message(), tc.field+": ") {
				t.Fatalf("message %q lost its field", st.Message())
			}
		})
	}
}
