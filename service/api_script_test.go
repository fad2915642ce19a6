package service

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/script/linuxtarget"
)

const handshakeScript = `// A passive open, data in, an active close.
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0  bind(3, ..., ...) = 0
+0  listen(3, 1) = 0
+0  < S 0:0(0) win 65535 <mss 1460>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 65535
+0  accept(3, ..., ...) = 4
+0  < P. 1:6(5) ack 1 win 65535
+0  read(4, ..., 5) = 5
+.2 > . 1:1(0) ack 6
+0  close(4) = 0
+0  > F. 1:1(0) ack 6
+0  < F. 6:6(0) ack 2 win 65535
+0  > . 2:2(0) ack 7
`

func (e *env) scripts() pb.ScriptServiceClient { return pb.NewScriptServiceClient(e.conn) }

// TestRunScriptLogsTheRunInASessionThatStays: a script runs in a fresh
// session that stays for inspection: its endpoints show the states the
// script reached, its log re-runs identically, and running the script
// again gives the same report.
func TestRunScriptLogsTheRunInASessionThatStays(t *testing.T) {
	e := newEnv(t, Config{})
	c := ctx(t)
	rep := must[*pb.RunScriptResponse](t)(e.scripts().RunScript(c, &pb.RunScriptRequest{Script: handshakeScript, Compare: "SEMANTIC", Name: "hs.pkt", SessionId: "hs"}))
	if !rep.Passed || rep.Session != "sessions/hs" || rep.Compare != "semantic" || rep.Script != "hs.pkt" || rep.Failure != "" || len(rep.Lines) < 15 {
		t.Fatalf("report: %v", rep)
	}
	for _, l := range rep.Lines {
		if l.Status != "PASS" {
			t.Errorf("line %d %q: %s %s", l.Line, l.Text, l.Status, l.Reason)
		}
	}
	if v := e.verify("sessions/hs"); !v.Identical || v.RecordsChecked < 10 {
		t.Fatalf("verify: %v", v)
	}
	eps := must[*pb.ListEndpointsResponse](t)(e.endpoints.ListEndpoints(c, &pb.ListEndpointsRequest{Parent: "sessions/hs"})).Endpoints
	states := map[string]bool{}
	for _, ep := range eps {
		states[ep.StateName] = true
	}
	if !states["LISTEN"] || !states["TIME-WAIT"] {
		t.Fatalf("endpoints of the script's session: %v", eps)
	}
	again := must[*pb.RunScriptResponse](t)(e.scripts().RunScript(c, &pb.RunScriptRequest{Script: handshakeScript, Compare: "semantic", Name: "hs.pkt", SessionId: "hs2"}))
	again.Session = rep.Session
	if !protoEqual(again, rep) {
		t.Fatalf("a second run differs:\n%v\n%v", rep, again)
	}
}

// TestRunScriptReportsTheFirstFailure: a wrong expectation fails the run
// at its line, with what was expected and what the engine did.
func TestRunScriptReportsTheFirstFailure(t *testing.T) {
	e := newEnv(t, Config{})
	bad := strings.Replace(handshakeScript, "+0  > S. 0:0(0) ack 1 <...>", "+0  > S. 0:0(0) ack 2 <...>", 1)
	rep := must[*pb.RunScriptResponse](t)(e.scripts().RunScript(ctx(t), &pb.RunScriptRequest{Script: bad}))
	if rep.Passed || !strings.HasPrefix(rep.Failure, "line 7:") || rep.NotRun == 0 {
		t.Fatalf("report: passed %t failure %q not run %d", rep.Passed, rep.Failure, rep.NotRun)
	}
	for _, l := range rep.Lines {
		if l.Line == 7 && (l.Status != "FAIL" || l.Expected == "" || l.Actual == "" || l.Reason == "") {
			t.Fatalf("line 7: %v", l)
		}
	}
	if rep.Session == "" {
		t.Fatalf("no session named")
	}
	e.getSession(rep.Session)
}

func TestRunScriptRejectsBadRequestsAndCreatesNothing(t *testing.T) {
	e := newEnv(t, Config{})
	e.createSession("taken", nil)
	tests := []struct {
		name string
		req  *pb.RunScriptRequest
		want codes.Code
	}{
		{"an unknown compare mode", &pb.RunScriptRequest{Script: handshakeScript, Compare: "fuzzy"}, codes.InvalidArgument},
		{"an empty script", &pb.RunScriptRequest{Script: " \n"}, codes.InvalidArgument},
		{"a syntax error", &pb.RunScriptRequest{Script: "0 < S 0:0(0) win\n+0 >>> nonsense\n"}, codes.InvalidArgument},
		{"a bad session ID", &pb.RunScriptRequest{Script: handshakeScript, SessionId: "Bad_ID"}, codes.InvalidArgument},
		{"a session ID in use", &pb.RunScriptRequest{Script: handshakeScript, SessionId: "taken"}, codes.AlreadyExists},
		{"an unknown target", &pb.RunScriptRequest{Script: handshakeScript, Target: "freebsd"}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.scripts().RunScript(ctx(t), tt.req)
			wantCode(t, err, tt.want)
			if n := e.svc.SessionCount(); n != 1 {
				t.Fatalf("%d sessions after a rejected run, want 1", n)
			}
		})
	}
}

// TestRunScriptOnTheKernel: target "linux" runs the script against the
// server machine's kernel where the server runs as root with TUN, and is
// FAILED_PRECONDITION otherwise; neither creates a session.
func TestRunScriptOnTheKernel(t *testing.T) {
	e := newEnv(t, Config{})
	const accept = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n+0 listen(3, 1) = 0\n" +
		"+0 getsockopt(3, SOL_TCP, TCP_INFO, {tcpi_state=TCP_LISTEN, ...}, [...]) = 0\n+0 close(3) = 0\n"
	for _, target := range []string{"linux", "both"} {
		rep, err := e.scripts().RunScript(ctx(t), &pb.RunScriptRequest{Script: accept, Target: target})
		if why := linuxtarget.Available(); why != "" {
			wantCode(t, err, codes.FailedPrecondition)
			continue
		}
		if err != nil {
			t.Fatalf("target %s: %v", target, err)
		}
		if !rep.GetPassed() || rep.GetTarget() != target || len(rep.GetDifferences()) != 0 {
			t.Errorf("target %s: passed %v, target %q, %d differences: %s", target, rep.GetPassed(), rep.GetTarget(), len(rep.GetDifferences()), rep.GetFailure())
		}
	}
	if n := e.svc.SessionCount(); n != 0 {
		t.Errorf("%d sessions after kernel runs, want 0", n)
	}
}
