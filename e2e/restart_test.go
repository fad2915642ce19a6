package e2e

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

const (
	peer       = "10.0.0.2:40000"
	listenAddr = "10.0.0.1:80"
)

func fields(src, dst string, seq, ack uint32, payload string, flags ...string) *pb.SubmitSegmentRequest_Fields {
	f := &pb.SegmentFields{SourceAddress: src, DestinationAddress: dst, Seq: seq, Ack: ack, Flags: flags, Window: 65535}
	if payload != "" {
		f.Data = &pb.SegmentFields_PayloadText{PayloadText: payload}
	}
	return &pb.SubmitSegmentRequest_Fields{Fields: f}
}

func (s *server) submit(session string, f *pb.SubmitSegmentRequest_Fields) *pb.SubmitSegmentResponse {
	s.t.Helper()
	r, err := s.segments.SubmitSegment(ctx(s.t), &pb.SubmitSegmentRequest{Parent: session, Segment: f})
	if err != nil {
		s.t.Fatalf("SubmitSegment %v: %v", f.Fields, err)
	}
	return r
}

func (s *server) createSession(id string, opts *pb.SessionOptions) string {
	s.t.Helper()
	r, err := s.sessions.CreateSession(ctx(s.t), &pb.CreateSessionRequest{SessionId: id, Session: &pb.Session{Options: opts}})
	if err != nil {
		s.t.Fatalf("CreateSession %s: %v", id, err)
	}
	return r.Session.Name
}

func (s *server) listen(session, alias, addr string) string {
	s.t.Helper()
	r, err := s.endpoints.CreateEndpoint(ctx(s.t), &pb.CreateEndpointRequest{Parent: session, EndpointId: alias,
		Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: addr}}})
	if err != nil {
		s.t.Fatalf("listen %s: %v", addr, err)
	}
	return r.Endpoint.Name
}

func fixedISN() *pb.SessionOptions {
	return &pb.SessionOptions{IsnMode: pb.IsnMode_ISN_MODE_FIXED, FixedIsn: 1000}
}

// establish opens a connection from src to the listener on listenAddr (fixed
// ISN 1000) and sends payload; the connection is then ESTABLISHED with
// payload readable, and the peer's next sequence number is 101+len.
func (s *server) establish(session, src, payload string) {
	s.t.Helper()
	s.submit(session, fields(src, listenAddr, 100, 0, "", "SYN"))
	s.submit(session, fields(src, listenAddr, 101, 1001, payload, "ACK"))
}

// snapshot is everything a client can read about the server's sessions
// and endpoints, minus what is not session state (the outbound queue is
// the wire; restore says how this process got the session).
func (s *server) snapshot() map[string]proto.Message {
	s.t.Helper()
	out := map[string]proto.Message{}
	ls, err := s.sessions.ListSessions(ctx(s.t), &pb.ListSessionsRequest{PageSize: 1000})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, ss := range ls.Sessions {
		ss.OutboundQueueLength, ss.OutboundDropped, ss.Restore = 0, 0, nil
		out[ss.Name] = ss
		eps, err := s.endpoints.ListEndpoints(ctx(s.t), &pb.ListEndpointsRequest{Parent: ss.Name, PageSize: 1000})
		if err != nil {
			s.t.Fatal(err)
		}
		for _, ep := range eps.Endpoints {
			out[ep.Name] = ep
		}
	}
	return out
}

// TestRestartKeepsEverySession: after SIGTERM and a new start on the same
// data directory, every session and endpoint reads exactly as before,
// every session verifies as identical, Session.restore says what restoring
// found, and the sessions carry on.
func TestRestartKeepsEverySession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)

	// a: an established connection with unread data, not yet accepted.
	a := s.createSession("a", fixedISN())
	s.listen(a, "", listenAddr)
	s.establish(a, peer, "hello")
	// b: client-chosen endpoint IDs, IPv6, an active open in SYN-SENT,
	// RFC 6528 ISNs from a seed.
	seed := "restart-test"
	b := s.createSession("b", &pb.SessionOptions{SecretSeed: &seed, Msl: durationpb.New(5e9)})
	s.listen(b, "web", "[2001:db8::1]:443")
	if _, err := s.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{Parent: b, EndpointId: "out",
		Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: "10.1.1.1:5000", RemoteAddress: "10.1.1.2:80"}}}); err != nil {
		t.Fatal(err)
	}
	// c: the README's connection, closed by us, waiting in TIME-WAIT.
	c := s.createSession("c", fixedISN())
	s.listen(c, "", listenAddr)
	s.establish(c, peer, "hello")
	if _, err := s.endpoints.ReceiveData(ctx(t), &pb.ReceiveDataRequest{Name: c + "/endpoints/2"}); err != nil {
		t.Fatal(err) // (closing with unread data would send a RST)
	}
	if _, err := s.endpoints.CloseEndpoint(ctx(t), &pb.CloseEndpointRequest{Name: c + "/endpoints/2"}); err != nil {
		t.Fatal(err)
	}
	s.submit(c, fields(peer, listenAddr, 106, 1002, "", "FIN", "ACK"))
	// d: nothing in it.
	s.createSession("d", nil)

	before := s.snapshot()
	if ep := before[c+"/endpoints/2"].(*pb.Endpoint); ep.StateName != "TIME-WAIT" {
		t.Fatalf("setup: %s is %s, want TIME-WAIT", ep.Name, ep.StateName)
	}
	s.stop()

	s = startServer(t, dir)
	after := s.snapshot()
	if len(after) != len(before) {
		t.Errorf("after the restart %d sessions and endpoints, before %d", len(after), len(before))
	}
	for name, want := range before {
		if got := after[name]; !proto.Equal(got, want) {
			t.Errorf("%s differs after the restart:\n before %v\n after  %v", name, want, got)
		}
	}
	for _, name := range []string{a, b, c, "sessions/d"} {
		v, err := s.logsvc.VerifySession(ctx(t), &pb.VerifySessionRequest{Name: name})
		if err != nil || !v.Identical {
			t.Errorf("VerifySession %s: %v, %v", name, v, err)
		}
		g, err := s.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		want := &pb.RestoreStatus{Records: g.Session.RecordCount, Identical: true}
		if !proto.Equal(g.Session.Restore, want) {
			t.Errorf("%s: Session.restore %v, want %v", name, g.Session.Restore, want)
		}
	}
	// REST shows the same restore status.
	if r := s.doJSON("GET", "/v1/sessions/a", ""); jstr(r, "session.restore.identical") != "true" || jstr(r, "session.restore.records") != fmt.Sprint(before[a].(*pb.Session).RecordCount) {
		t.Errorf("REST GET after the restart: restore %s", jstr(r, "session.restore"))
	}

	// The sessions carry on: the TIME-WAIT timer survived the restart.
	r, err := s.sessions.AdvanceClock(ctx(t), &pb.AdvanceClockRequest{Name: c, Target: &pb.AdvanceClockRequest_ToNextDeadline{ToNextDeadline: true}})
	if err != nil || len(r.Outputs.Transitions) != 1 || r.Outputs.Transitions[0].ToStateName != "CLOSED" {
		t.Errorf("TIME-WAIT after the restart: %v, %v", r, err)
	}
	got, err := s.endpoints.ReceiveData(ctx(t), &pb.ReceiveDataRequest{Name: a + "/endpoints/2"})
	if err != nil || got.Text != "hello" {
		t.Errorf("reading the data received before the restart: %v, %v", got, err)
	}
	s.stop()
}
