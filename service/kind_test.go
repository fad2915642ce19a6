package service

import (
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestSessionKinds: a session says what it is for. CreateSession makes
// INTERACTIVE sessions unless told TUN, and refuses SCRIPT (RunScript's);
// a script's session is SCRIPT and carries its result. The kind is in the
// log and survives a restart; the result, not in the log, does not.
func TestSessionKinds(t *testing.T) {
	e := newEnv(t, Config{})
	kind := func(name string) pb.SessionKind { return e.getSession(name).Kind }
	if k := e.createSession("plain", nil).Kind; k != pb.SessionKind_SESSION_KIND_INTERACTIVE {
		t.Errorf("a plain session is %v", k)
	}
	must[*pb.CreateSessionResponse](t)(e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "bridge", Session: &pb.Session{Kind: pb.SessionKind_SESSION_KIND_TUN}}))
	_, err := e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "fake", Session: &pb.Session{Kind: pb.SessionKind_SESSION_KIND_SCRIPT}})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "odd", Session: &pb.Session{Kind: 99}})
	wantCode(t, err, codes.InvalidArgument)
	rep := must[*pb.RunScriptResponse](t)(e.scripts().RunScript(ctx(t), &pb.RunScriptRequest{Script: handshakeScript, Name: "hs.pkt", SessionId: "run"}))
	s := e.getSession(rep.Session)
	if s.Kind != pb.SessionKind_SESSION_KIND_SCRIPT || s.Script.GetName() != "hs.pkt" || s.Script.GetPassed() != rep.Passed || !rep.Passed {
		t.Errorf("the script's session: kind %v, script %v (report passed %v)", s.Kind, s.Script, rep.Passed)
	}
	e.restart()
	for name, want := range map[string]pb.SessionKind{"sessions/plain": pb.SessionKind_SESSION_KIND_INTERACTIVE,
		"sessions/bridge": pb.SessionKind_SESSION_KIND_TUN, "sessions/run": pb.SessionKind_SESSION_KIND_SCRIPT} {
		if got := kind(name); got != want {
			t.Errorf("after a restart %s is %v, want %v", name, got, want)
		}
	}
	if r := e.getSession("sessions/run").Script; r != nil {
		t.Errorf("after a restart the script result is %v, want none (it is not in the log)", r)
	}
}
