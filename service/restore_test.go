package service

import (
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// snapshot is everything a client can read about the server's sessions.
func (e *env) snapshot() map[string]proto.Message {
	e.t.Helper()
	c := ctx(e.t)
	out := map[string]proto.Message{}
	ls := must[*pb.ListSessionsResponse](e.t)(e.sessions.ListSessions(c, &pb.ListSessionsRequest{PageSize: 1000}))
	for _, s := range ls.Sessions {
		// The outbound queue is the wire, not session state: it is not
		// kept across a restart (segments on it are lost, as on a network).
		s.OutboundQueueLength, s.OutboundDropped = 0, 0
		out[s.Name] = s
		eps := must[*pb.ListEndpointsResponse](e.t)(e.endpoints.ListEndpoints(c, &pb.ListEndpointsRequest{Parent: s.Name, PageSize: 1000}))
		for _, ep := range eps.Endpoints {
			out[ep.Name] = ep
		}
	}
	return out
}

// TestRestart: Close and Open on the same directory find every session and
// endpoint as before, and every session verifies as identical.
func TestRestart(t *testing.T) {
	e := newEnv(t, Config{})
	c := ctx(t)
	walkthroughOpen(t, e, "a")

	// A session with client-chosen endpoint IDs and an active open.
	s := e.createSession("b", nil)
	must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(c, &pb.CreateEndpointRequest{
		Parent: s.Name, EndpointId: "web", Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "[2001:db8::1]:443", Backlog: 4}},
	}))
	conn := must[*pb.CreateEndpointResponse](t)(e.endpoints.CreateEndpoint(c, &pb.CreateEndpointRequest{
		Parent: s.Name, EndpointId: "out", Mode: &pb.CreateEndpointRequest_Connect{Connect: &pb.ConnectConfig{LocalAddress: "10.1.1.1:5000", RemoteAddress: "10.1.1.2:80"}},
	}))
	if conn.Endpoint.Name != "sessions/b/endpoints/out" || conn.Endpoint.StateName != "SYN-SENT" || len(conn.Outputs.Segments) != 1 {
		t.Fatalf("connect: %v", conn)
	}
	e.createSession("c-empty", nil)

	before := e.snapshot()
	e.restart()
	after := e.snapshot()
	if len(after) != len(before) {
		t.Fatalf("after restart %d resources, before %d", len(after), len(before))
	}
	for name, b := range before {
		if a := after[name]; !proto.Equal(a, b) {
			t.Errorf("%s differs after restart:\n before %v\n after  %v", name, b, a)
		}
	}
	for _, id := range []string{"a", "b", "c-empty"} {
		if v := e.verify("sessions/" + id); !v.Identical {
			t.Errorf("verify %s: %v", id, v)
		}
	}
	if r := e.svc.RestoreReports(); len(r) != 0 {
		t.Errorf("clean logs gave restore reports: %+v", r)
	}
	// The aliases survived: the connection is still reachable by its ID.
	if ep := e.endpoint("sessions/b/endpoints/out"); ep.StateName != "SYN-SENT" {
		t.Errorf("aliased endpoint after restart: %v", ep)
	}
}
