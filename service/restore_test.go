package service

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
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
		// Restore says how this process got the session, not its state.
		s.Restore = nil
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

	if g := e.getSession("sessions/a"); g.Restore != nil {
		t.Errorf("a session this process created has restore %v, want none", g.Restore)
	}
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
	for _, id := range []string{"a", "b", "c-empty"} {
		g := e.getSession("sessions/" + id)
		want := &pb.RestoreStatus{Records: g.RecordCount, Identical: true}
		if !proto.Equal(g.Restore, want) {
			t.Errorf("%s: restore %v, want %v", id, g.Restore, want)
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

// TestMaxEndpointsFixedInLog: the endpoint limit a session was created
// with is in its start record (SessionStart.max_endpoints) and a restart
// with another server limit keeps it; a log of the older form, with the
// limit packed into engine_version, restores the same way.
func TestMaxEndpointsFixedInLog(t *testing.T) {
	cases := []struct {
		name string
		old  bool
	}{
		{"max_endpoints field", false},
		{"engine_version form", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{Limits: Limits{MaxEndpoints: 2}})
			s := e.createSession("lim", nil)
			e.listen(s.Name, "10.0.0.1:80")
			e.stop()
			rewriteLog(t, e.dir, "lim", func(r *pb.LogRecord) {
				st := r.GetStart()
				if st == nil {
					return
				}
				if st.MaxEndpoints != 2 || st.EngineVersion != machine.EngineName {
					t.Errorf("start record: max_endpoints %d, engine_version %q", st.MaxEndpoints, st.EngineVersion)
				}
				if tc.old {
					st.MaxEndpoints, st.EngineVersion = 0, machine.EngineName+" max_endpoints=2"
				}
			})
			e.cfg.Limits.MaxEndpoints = 100
			e.start()
			e.listen(s.Name, "10.0.0.1:81")
			_, err := e.endpoints.CreateEndpoint(ctx(t), &pb.CreateEndpointRequest{Parent: s.Name,
				Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:82"}}})
			wantCode(t, err, codes.ResourceExhausted)
			if v := e.verify(s.Name); !v.Identical {
				t.Errorf("verify: %v", v)
			}
		})
	}
}
