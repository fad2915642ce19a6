package service

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestSessionRecoverySwitches: loss recovery and congestion control are
// chosen per session through SessionOptions.switches (ecn here: a
// listener grants ECN to an ECN-setup SYN only where the session turned it
// on); the start record keeps them, so a restart re-runs the same
// behaviour.
func TestSessionRecoverySwitches(t *testing.T) {
	e := newEnv(t, Config{})
	const listener, peer = "10.0.0.1:80", "10.0.0.2:4000"
	ecnSyn := seg(peer, listener, 100, 0, []string{"SYN", "ECE", "CWR"}, "")
	for _, tc := range []struct {
		id       string
		switches map[string]string
		ece      bool
	}{
		{"plain", nil, false},
		{"ecn", map[string]string{"ecn": "2", "congestion_control": "cubic", "frto": "1", "rack": "0", "prr": "0", "hystart": "1", "sack_recovery": "1", "rexmit_min": "200"}, true},
	} {
		opts := fixedISNOptions(1)
		opts.Switches = tc.switches
		s := e.createSession(tc.id, opts)
		for k, v := range tc.switches {
			if s.Options.Switches[k] != v {
				t.Errorf("%s: effective switch %s=%q, want %q", tc.id, k, s.Options.Switches[k], v)
			}
		}
		e.listen(s.Name, listener)
		out := e.submit(s.Name, ecnSyn).Outputs
		if len(out.Segments) != 1 || slices.Contains(out.Segments[0].Flags, "ECE") != tc.ece {
			t.Fatalf("%s: SYN,ACK to an ECN-setup SYN: %v, want ECE %v", tc.id, out.Segments, tc.ece)
		}
	}
	e.restart()
	for _, s := range []string{"sessions/plain", "sessions/ecn"} {
		if v := e.verify(s); !v.Identical {
			t.Errorf("%s: the re-run differs from the log after a restart: %v", s, v.FirstDifference)
		}
	}
}

// TestSessionRecoverySwitchErrors: a bad value for a loss-recovery switch
// is INVALID_ARGUMENT naming the field.
func TestSessionRecoverySwitchErrors(t *testing.T) {
	e := newEnv(t, Config{})
	for _, sw := range [][2]string{
		{"congestion_control", "bbr"}, {"ecn", "3"}, {"frto", "2"}, {"rack", "maybe"},
		{"tlp", "x"}, {"prr", "-"}, {"hystart", "yes please"}, {"sack_recovery", "7"},
		{"ecn_maxretries", "-1"}, {"rexmit_min", "soon"},
	} {
		opts := &pb.SessionOptions{Switches: map[string]string{sw[0]: sw[1]}}
		_, err := e.sessions.CreateSession(ctx(t), &pb.CreateSessionRequest{SessionId: "x", Session: &pb.Session{Options: opts}})
		wantCode(t, err, codes.InvalidArgument)
		if f := badRequestField(err); f != "session.options.switches."+sw[0] {
			t.Errorf("%s=%s: field %q (%v)", sw[0], sw[1], f, err)
		}
	}
}

// TestSubmitSegmentIPECN: SegmentFields.ip_ecn sets the IP header's ECN
// field of an input; a CE mark on data of a connection that negotiated ECN
// comes back as ECE on the ACK, the segment views show the field, and a
// re-run after a restart (the log holds the packet as sent) is identical.
// A value beyond the four codepoints is INVALID_ARGUMENT naming the field.
// Reference: RFC 3168 §5, §6.1.3.
func TestSubmitSegmentIPECN(t *testing.T) {
	e := newEnv(t, Config{})
	const listener, peer = "10.0.0.1:80", "10.0.0.2:4000"
	opts := fixedISNOptions(1)
	opts.DelayedAck = proto.Bool(false)
	opts.Switches = map[string]string{"ecn": "1"}
	s := e.createSession("ce", opts)
	e.listen(s.Name, listener)
	if out := e.submit(s.Name, seg(peer, listener, 100, 0, []string{"SYN", "ECE", "CWR"}, "")).Outputs; len(out.Segments) != 1 || !slices.Contains(out.Segments[0].Flags, "ECE") {
		t.Fatalf("SYN,ACK: %v, want ECE", out.Segments)
	}
	e.submit(s.Name, seg(peer, listener, 101, 2, []string{"ACK"}, ""))
	data := seg(peer, listener, 101, 2, []string{"PSH", "ACK"}, "hello")
	data.IpEcn = proto.Uint32(3) // CE
	resp := e.submit(s.Name, data)
	if resp.Segment.GetIpEcn() != 3 {
		t.Errorf("the submitted segment's view: ip_ecn %d, want 3", resp.Segment.GetIpEcn())
	}
	out := resp.Outputs.Segments
	if len(out) != 1 || !slices.Contains(out[0].Flags, "ECE") || out[0].IpEcn != 0 {
		t.Fatalf("ACK of CE-marked data: %v, want ECE, not ECT", out)
	}
	bad := seg(peer, listener, 106, 2, []string{"ACK"}, "")
	bad.IpEcn = proto.Uint32(4)
	_, err := e.segments.SubmitSegment(ctx(t), &pb.SubmitSegmentRequest{Parent: s.Name, Segment: &pb.SubmitSegmentRequest_Fields{Fields: bad}})
	wantCode(t, err, codes.InvalidArgument)
	if f := badRequestField(err); f != "fields.ip_ecn" {
		t.Errorf("ip_ecn 4: field %q (%v)", f, err)
	}
	e.restart()
	if v := e.verify(s.Name); !v.Identical {
		t.Errorf("the re-run differs after a restart: %v", v.FirstDifference)
	}
}
