package service

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

const (
	server = "10.0.0.1:80"
	client = "10.0.0.2:40000"
)

// walkthrough runs the README scenario on session id up to the data being
// readable and returns the connection's name.
func walkthroughOpen(t *testing.T, e *env, id string) (session, conn string) {
	t.Helper()
	s := e.createSession(id, fixedISNOptions(1000))
	if s.Name != "sessions/"+id {
		t.Fatalf("session name %q", s.Name)
	}
	l := e.listen(s.Name, server)
	if l.StateName != "LISTEN" || l.Kind != pb.EndpointKind_ENDPOINT_KIND_LISTENER {
		t.Fatalf("listener: %v", l)
	}

	// SYN → SYN-ACK in the response.
	r := e.submit(s.Name, seg(client, server, 100, 0, []string{"SYN"}, ""))
	if r.Segment.Direction != pb.Direction_DIRECTION_INBOUND || !hasFlags(r.Segment, "SYN") || !r.Segment.ChecksumValid {
		t.Fatalf("submitted segment view: %v", r.Segment)
	}
	if len(r.Outputs.Segments) != 1 {
		t.Fatalf("SYN: got %d segments, want the SYN-ACK", len(r.Outputs.Segments))
	}
	synAck := r.Outputs.Segments[0]
	if !hasFlags(synAck, "SYN", "ACK") || synAck.Seq != 1000 || synAck.Ack != 101 || !synAck.ChecksumValid ||
		synAck.SourceAddress != server || synAck.DestinationAddress != client || len(synAck.Raw) == 0 || synAck.Summary == "" {
		t.Fatalf("SYN-ACK: %v", synAck)
	}
	if len(r.Outputs.Transitions) == 0 || r.Outputs.Transitions[0].ToStateName != "SYN-RECEIVED" {
		t.Fatalf("SYN: transitions %v", r.Outputs.Transitions)
	}
	conn = r.Outputs.Transitions[0].Endpoint
	if len(r.Outputs.Explanations) == 0 || r.Outputs.Explanations[0].Code == "" || r.Outputs.Explanations[0].Section == "" {
		t.Fatalf("SYN: explanations %v", r.Outputs.Explanations)
	}

	// ACK carrying data → ESTABLISHED with 5 readable bytes.
	r = e.submit(s.Name, seg(client, server, 101, 1001, []string{"PSH", "ACK"}, "hello"))
	var established bool
	for _, tr := range r.Outputs.Transitions {
		established = established || (tr.Endpoint == conn && tr.ToStateName == "ESTABLISHED" && tr.ToState == pb.State_STATE_ESTABLISHED)
	}
	if !established {
		t.Fatalf("ACK: transitions %v", r.Outputs.Transitions)
	}
	ep := e.endpoint(conn)
	if ep.StateName != "ESTABLISHED" || ep.BytesReadable != 5 || ep.Tcb.GetRcvNxt() != 106 || ep.Tcb.GetSndUna() != 1001 || ep.Tcb.GetIss() != 1000 || ep.Tcb.GetIrs() != 100 {
		t.Fatalf("endpoint after data: %v", ep)
	}
	if ep.Listener != l.Name || ep.Accepted {
		t.Fatalf("endpoint's listener %q accepted %t", ep.Listener, ep.Accepted)
	}
	return s.Name, conn
}

// TestWalkthrough is the README scenario over gRPC: a listener, a
// handshake from structured segments, data, the four-way close to
// TIME-WAIT and CLOSED after 2·MSL.
func TestWalkthrough(t *testing.T) {
	e := newEnv(t, Config{})
	s, conn := walkthroughOpen(t, e, "demo")
	c := ctx(t)

	acc := must[*pb.AcceptConnectionResponse](t)(e.endpoints.AcceptConnection(c, &pb.AcceptConnectionRequest{Name: s + "/endpoints/1"}))
	if acc.Endpoint.Name != conn || !acc.Endpoint.Accepted {
		t.Fatalf("accept: %v", acc.Endpoint)
	}
	rcv := must[*pb.ReceiveDataResponse](t)(e.endpoints.ReceiveData(c, &pb.ReceiveDataRequest{Name: conn}))
	if rcv.Text != "hello" || rcv.Eof {
		t.Fatalf("receive: %v", rcv)
	}

	// Active close: FIN → FIN-WAIT-1.
	cl := must[*pb.CloseEndpointResponse](t)(e.endpoints.CloseEndpoint(c, &pb.CloseEndpointRequest{Name: conn}))
	if cl.Endpoint.StateName != "FIN-WAIT-1" || len(cl.Outputs.Segments) != 1 || !hasFlags(cl.Outputs.Segments[0], "FIN", "ACK") ||
		cl.Outputs.Segments[0].Seq != 1001 || cl.Outputs.Segments[0].Ack != 106 {
		t.Fatalf("close: %v", cl)
	}
	// The peer ACKs the FIN → FIN-WAIT-2; then sends its FIN → TIME-WAIT.
	e.submit(s, seg(client, server, 106, 1002, []string{"ACK"}, ""))
	if st := e.endpoint(conn).StateName; st != "FIN-WAIT-2" {
		t.Fatalf("after the ACK of our FIN: %s", st)
	}
	r := e.submit(s, seg(client, server, 106, 1002, []string{"FIN", "ACK"}, ""))
	if len(r.Outputs.Segments) != 1 || !hasFlags(r.Outputs.Segments[0], "ACK") || r.Outputs.Segments[0].Ack != 107 {
		t.Fatalf("ACK of the peer's FIN: %v", r.Outputs.Segments)
	}
	ep := e.endpoint(conn)
	if ep.StateName != "TIME-WAIT" || len(ep.Timers) != 1 || ep.Timers[0].Kind != pb.TimerKind_TIMER_KIND_TIME_WAIT {
		t.Fatalf("after the peer's FIN: %v", ep)
	}

	// 2·MSL later: CLOSED.
	adv := must[*pb.AdvanceClockResponse](t)(e.sessions.AdvanceClock(c, &pb.AdvanceClockRequest{Name: s, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(61 * time.Second)}}))
	if adv.Clock.AsDuration() != 61*time.Second {
		t.Fatalf("clock %v", adv.Clock.AsDuration())
	}
	var closed bool
	for _, tr := range adv.Outputs.Transitions {
		closed = closed || (tr.Endpoint == conn && tr.FromStateName == "TIME-WAIT" && tr.ToStateName == "CLOSED" && tr.Cause == "TIME_WAIT_EXPIRED")
	}
	if !closed {
		t.Fatalf("advance: transitions %v", adv.Outputs.Transitions)
	}
	if st := e.endpoint(conn).StateName; st != "CLOSED" {
		t.Fatalf("after 2·MSL: %s", st)
	}
	if v := e.verify(s); !v.Identical || v.RecordsChecked == 0 {
		t.Fatalf("verify: %v", v)
	}
}
