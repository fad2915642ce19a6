package service

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestSessionProfile: the profile session option chooses the behaviour
// switches (here FreeBSD's: a SYN,ACK to a listener is dropped without a
// RST, and its timers), options that are set override the profile, the
// effective options report it, and a restart re-runs the log into the
// same behaviour.
func TestSessionProfile(t *testing.T) {
	e := newEnv(t, Config{})
	const listener, peer = "10.0.0.1:80", "10.0.0.2:4000"
	synAck := seg(peer, listener, 100, 1, []string{"SYN", "ACK"}, "")

	rfc := e.createSession("rfc", fixedISNOptions(1))
	if rfc.Options.Profile != "rfc" {
		t.Errorf("default profile %q, want rfc", rfc.Options.Profile)
	}
	e.listen(rfc.Name, listener)
	// RFC 9293 §3.10.7.2: an ACK to a LISTEN endpoint gets <SEQ=SEG.ACK><CTL=RST>.
	if out := e.submit(rfc.Name, synAck).Outputs; len(out.Segments) != 1 || !hasFlags(out.Segments[0], "RST") {
		t.Fatalf("rfc: SYN,ACK to a listener: %v, want one RST", out.Segments)
	}

	opts := fixedISNOptions(1)
	opts.Profile = "freebsd"
	bsd := e.createSession("bsd", opts)
	if got := bsd.Options.DelayedAckTimeout.AsDuration(); got != 40*time.Millisecond {
		t.Errorf("freebsd delayed_ack_timeout %v, want 40ms (delacktime)", got)
	}
	if got := bsd.Options.MinRto.AsDuration(); got != 30*time.Millisecond {
		t.Errorf("freebsd min_rto %v, want 30ms (rexmit_min)", got)
	}
	e.listen(bsd.Name, listener)
	if out := e.submit(bsd.Name, synAck).Outputs; len(out.Segments) != 0 {
		t.Fatalf("freebsd: SYN,ACK to a listener: %v, want it dropped (listen_synack_drop)", out.Segments)
	}

	// An option that is set wins over the profile.
	opts = fixedISNOptions(1)
	opts.Profile = "freebsd"
	opts.DelayedAckTimeout = durationpb.New(100 * time.Millisecond)
	if got := e.createSession("bsd-override", opts).Options.DelayedAckTimeout.AsDuration(); got != 100*time.Millisecond {
		t.Errorf("freebsd with delayed_ack_timeout 100ms: %v", got)
	}

	// A switch on its own, over the rfc profile.
	opts = fixedISNOptions(1)
	opts.Switches = map[string]string{"listen_synack_drop": "1"}
	one := e.createSession("one-switch", opts)
	e.listen(one.Name, listener)
	if out := e.submit(one.Name, synAck).Outputs; len(out.Segments) != 0 {
		t.Fatalf("listen_synack_drop=1: %v, want the SYN,ACK dropped", out.Segments)
	}

	e.restart()
	for _, s := range []string{"sessions/rfc", "sessions/bsd", "sessions/one-switch"} {
		if v := e.verify(s); !v.Identical {
			t.Errorf("%s: the re-run differs from the log after a restart: %v", s, v.FirstDifference)
		}
	}
	if got := e.getSession("sessions/bsd").Options; got.Profile != "freebsd" || got.MinRto.AsDuration() != 30*time.Millisecond {
		t.Errorf("after restart: profile %q, min_rto %v", got.Profile, got.MinRto.AsDuration())
	}
}

// TestSessionProfileErrors: an unknown profile or switch, or a bad switch
// value, is INVALID_ARGUMENT naming the field, and creates nothing.
func TestSessionProfileErrors(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range []struct {
		name  string
		opts  *pb.SessionOptions
		field string
	}{
		{"unknown profile", &pb.SessionOptions{Profile: "windows"}, "session.options.profile"},
		{"unknown switch", &pb.SessionOptions{Switches: map[string]string{"no_such_switch": "1"}}, "session.options.switches.no_such_switch"},
		{"bad value", &pb.SessionOptions{Profile: "freebsd", Switches: map[string]string{"tw_bsd": "maybe"}}, "session.options.switches.tw_bsd"},
	} {
		_, err := e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "x", Session: &pb.Session{Options: tc.opts}})
		wantCode(t, err, codes.InvalidArgument)
		if f := badRequestField(err); f != tc.field {
			t.Errorf("%s: field %q, want %q (%v)", tc.name, f, tc.field, err)
		}
	}
	if _, err := e.sessions.GetSession(ctx(t), &pb.GetSessionRequest{Name: "sessions/x"}); err == nil {
		t.Error("a refused CreateSession left a session")
	}
}

// badRequestField is the field of an error's one BadRequest violation.
func badRequestField(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) == 1 {
			return br.FieldViolations[0].Field
		}
	}
	return ""
}
