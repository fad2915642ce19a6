package service

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// waitState polls an endpoint until it reaches want.
func (e *env) waitState(name, want string, within time.Duration) *pb.Endpoint {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ep := e.endpoint(name)
		if ep.StateName == want {
			return ep
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is %s after %v, want %s", name, ep.StateName, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRealtimeTimers: a REALTIME session fires its timers on the wall
// clock, logs each firing as a clock advance, and re-runs identically.
func TestRealtimeTimers(t *testing.T) {
	e := newEnv(t, Config{})
	opts := fixedISNOptions(1000)
	opts.ClockMode = pb.ClockMode_CLOCK_MODE_REALTIME
	opts.Msl = durationpb.New(20 * time.Millisecond)
	opts.InitialRto = durationpb.New(30 * time.Millisecond)
	opts.MinRto = durationpb.New(30 * time.Millisecond)
	opts.MaxSynAckRetries = 1
	s := e.createSession("rt", opts).Name
	e.listen(s, server)
	c := ctx(t)

	// A half-open connection whose SYN-ACK is never answered: it is resent
	// once after the RTO, then dropped.
	e.submit(s, seg("10.0.0.3:1234", server, 500, 0, []string{"SYN"}, ""))
	half := s + "/endpoints/2"

	// A connection closed actively: TIME-WAIT ends after 2·MSL by itself.
	e.submit(s, seg(client, server, 100, 0, []string{"SYN"}, ""))
	conn := s + "/endpoints/3"
	e.submit(s, seg(client, server, 101, 1001, []string{"ACK"}, ""))
	must[*pb.CloseEndpointResponse](t)(e.endpoints.CloseEndpoint(c, &pb.CloseEndpointRequest{Name: conn}))
	e.submit(s, seg(client, server, 101, 1002, []string{"FIN", "ACK"}, ""))
	e.waitState(conn, "CLOSED", 5*time.Second)
	e.waitState(half, "CLOSED", 5*time.Second)

	// The SYN-ACK retransmission went to the outbound queue.
	l := must[*pb.ListSegmentsResponse](t)(e.segments.ListSegments(c, &pb.ListSegmentsRequest{Parent: s}))
	resent := 0
	for _, sg := range l.Segments {
		if sg.DestinationAddress == "10.0.0.3:1234" && hasFlags(sg, "SYN", "ACK") {
			resent++
		}
	}
	if resent != 2 {
		t.Fatalf("%d SYN-ACKs to the silent peer, want 2 (original and one retransmission): %v", resent, l.Segments)
	}
	sess := must[*pb.GetSessionResponse](t)(e.sessions.GetSession(c, &pb.GetSessionRequest{Name: s})).Session
	if sess.Clock.AsDuration() < 40*time.Millisecond {
		t.Fatalf("session clock %v, want past 2·MSL", sess.Clock.AsDuration())
	}
	recs := must[*pb.ListRecordsResponse](t)(e.logs.ListRecords(c, &pb.ListRecordsRequest{Parent: s, PageSize: 1000}))
	advances := 0
	for _, r := range recs.Records {
		if r.GetInput().GetAdvanceClock() != nil {
			advances++
		}
	}
	if advances == 0 {
		t.Fatal("no clock advance was logged")
	}
	if v := e.verify(s); !v.Identical {
		t.Fatalf("verify: %v", v)
	}

	// After a restart the session continues on the wall clock.
	e.restart()
	if v := e.verify(s); !v.Identical {
		t.Fatalf("verify after restart: %v", v)
	}
	if ep := e.endpoint(conn); ep.StateName != "CLOSED" {
		t.Fatalf("after restart: %v", ep)
	}
}
