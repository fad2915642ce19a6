package fsm

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Conformance tests: one table per RFC 9293 §3.10 event, one row per state.
// docs/CONFORMANCE.md points at these rows.

// reach returns a server-side endpoint driven into the given state (with a
// client peer where the state needs one).
func reach(t *testing.T, st State) (cli, srv *side, c, s EndpointID) {
	t.Helper()
	switch st {
	case Listen:
		srv = newSide(t, "server", fixedConfig(300))
		s, _ = srv.e.Listen(serverAddr, 0)
		return nil, srv, 0, s
	case SynSent:
		srv = newSide(t, "server", fixedConfig(300))
		s, _ = srv.e.Connect(serverAddr, clientAddr)
		srv.collect()
		srv.out = nil
		return nil, srv, 0, s
	case SynReceived:
		srv = newSide(t, "server", fixedConfig(300))
		srv.e.Listen(serverAddr, 0)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
		srv.collect()
		srv.out = nil
		return nil, srv, 0, 2
	}
	cli, srv, c, s = defaultPair(t)
	switch st {
	case Established:
	case FinWait1:
		srv.e.Shutdown(s)
	case FinWait2:
		srv.e.Shutdown(s)
		relay(srv, cli, "F. seq=301 ack=101")
		relay(cli, srv, ". seq=101 ack=302")
	case CloseWait:
		cli.e.Shutdown(c)
		relay(cli, srv, "F. seq=101 ack=301")
		relay(srv, cli, ". seq=301 ack=102")
	case Closing:
		cli.e.Shutdown(c)
		srv.e.Shutdown(s)
		srv.deliver(cli.expect("F. seq=101 ack=301"))
	case LastAck:
		cli.e.Shutdown(c)
		relay(cli, srv, "F. seq=101 ack=301")
		relay(srv, cli, ". seq=301 ack=102")
		srv.e.Shutdown(s)
	case TimeWait:
		srv.e.Shutdown(s)
		relay(srv, cli, "F. seq=301 ack=101")
		relay(cli, srv, ". seq=101 ack=302")
		cli.e.Shutdown(c)
		relay(cli, srv, "F. seq=101 ack=302")
		relay(srv, cli, ". seq=302 ack=102")
	case Closed:
		srv.e.Abort(s)
	}
	srv.collect()
	srv.out = nil
	if cli != nil {
		cli.collect()
		cli.out = nil
	}
	srv.wantState(s, st)
	return cli, srv, c, s
}

var allStates = []State{Closed, Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait}

// TestSendCall: SEND in every state. Reference: RFC 9293 §3.10.2.
func TestSendCall(t *testing.T) {
	want := map[State]error{
		Closed:      ErrConnectionDoesNotExist, // after ABORT the TCB is gone
		Listen:      ErrIsListener,             // RFC: may turn the listener active; not supported (docs/CONFORMANCE.md)
		SynSent:     nil,                       // queued until ESTABLISHED
		SynReceived: nil,
		Established: nil,
		CloseWait:   nil,
		FinWait1:    ErrConnectionClosing,
		FinWait2:    ErrConnectionClosing,
		Closing:     ErrConnectionClosing,
		LastAck:     ErrConnectionClosing,
		TimeWait:    ErrConnectionClosing,
	}
	for _, st := range allStates {
		t.Run(st.String(), func(t *testing.T) {
			_, srv, _, s := reach(t, st)
			n, err := srv.e.Send(s, []byte("abc"))
			if !errors.Is(err, want[st]) && !(st == Closed && err != nil) {
				t.Fatalf("Send in %s = %d, %v; want %v", st, n, err, want[st])
			}
			if want[st] == nil && n != 3 {
				t.Fatalf("Send in %s took %d bytes", st, n)
			}
			in, _ := srv.e.Endpoint(s)
			if want[st] == nil && in.Unsent+in.Unacked != 3 {
				t.Fatalf("Send in %s: buffered %d+%d", st, in.Unsent, in.Unacked)
			}
		})
	}
}

// TestSendQueuedUntilEstablished: data written in SYN-SENT goes out right
// after the handshake. Reference: RFC 9293 §3.10.2 (SYN-SENT).
func TestSendQueuedUntilEstablished(t *testing.T) {
	cli, srv := newSide(t, "client", fixedConfig(100)), newSide(t, "server", fixedConfig(300))
	srv.e.Listen(serverAddr, 0)
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	mustSend(t, cli, c, "queued")
	relay(cli, srv, "S seq=100")
	cli.expectNothing()
	relay(srv, cli, "S. seq=300 ack=101")
	relay(cli, srv, ". seq=101 ack=301")
	relay(cli, srv, "P. seq=101 ack=301 len=6")
}

// TestReceiveCall: RECEIVE in every state. Reference: RFC 9293 §3.10.3.
func TestReceiveCall(t *testing.T) {
	for _, st := range allStates {
		t.Run(st.String(), func(t *testing.T) {
			_, srv, _, s := reach(t, st)
			n, err := srv.e.Receive(s, make([]byte, 10))
			switch st {
			case Closed:
				if err == nil {
					t.Fatalf("Receive in CLOSED succeeded")
				}
			case Listen:
				if !errors.Is(err, ErrIsListener) {
					t.Fatalf("Receive on a listener = %v", err)
				}
			case CloseWait, Closing, LastAck, TimeWait:
				// The peer's FIN was received: end of file is "connection closing".
				if !errors.Is(err, ErrConnectionClosing) {
					t.Fatalf("Receive in %s = %d, %v; want connection closing", st, n, err)
				}
			default:
				if err != nil || n != 0 {
					t.Fatalf("Receive in %s = %d, %v; want 0, nil (nothing yet)", st, n, err)
				}
			}
		})
	}
}

// TestCloseCall: CLOSE (Shutdown) in every state. Reference: RFC 9293 §3.10.4.
func TestCloseCall(t *testing.T) {
	tests := []struct {
		st      State
		wantErr error
		next    State
		emits   string
	}{
		{Closed, ErrConnectionDoesNotExist, Closed, ""}, // after ABORT the TCB is gone
		{Listen, ErrIsListener, Listen, ""},
		{SynSent, nil, Closed, ""},
		{SynReceived, nil, SynReceived, ""}, // FIN queued until ESTABLISHED
		{Established, nil, FinWait1, "F. seq=301 ack=101"},
		{FinWait1, ErrConnectionClosing, FinWait1, ""},
		{FinWait2, ErrConnectionClosing, FinWait2, ""},
		{CloseWait, nil, LastAck, "F. seq=301 ack=102"},
		{Closing, ErrConnectionClosing, Closing, ""},
		{LastAck, ErrConnectionClosing, LastAck, ""},
		{TimeWait, ErrConnectionClosing, TimeWait, ""},
	}
	for _, tt := range tests {
		t.Run(tt.st.String(), func(t *testing.T) {
			_, srv, _, s := reach(t, tt.st)
			err := srv.e.Shutdown(s)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CLOSE in %s = %v, want %v", tt.st, err, tt.wantErr)
			}
			srv.wantState(s, tt.next)
			if tt.emits != "" {
				srv.expect(tt.emits)
			}
			srv.expectNothing()
		})
	}
}

// TestCloseInSynReceivedSendsFinAfterHandshake: the FIN queued in
// SYN-RECEIVED goes out once the ACK arrives. Reference: RFC 9293 §3.10.4.
func TestCloseInSynReceivedSendsFinAfterHandshake(t *testing.T) {
	_, srv, _, s := reach(t, SynReceived)
	srv.e.Shutdown(s)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
	srv.wantState(s, FinWait1)
	srv.expect("F. seq=301 ack=101")
}

// TestAbortCall: ABORT in every state: a RST where the peer has state.
// Reference: RFC 9293 §3.10.5.
func TestAbortCall(t *testing.T) {
	rst := map[State]string{
		SynReceived: "R seq=301", Established: "R seq=301", FinWait1: "R seq=302",
		FinWait2: "R seq=302", CloseWait: "R seq=301",
	}
	for _, st := range allStates {
		t.Run(st.String(), func(t *testing.T) {
			_, srv, _, s := reach(t, st)
			err := srv.e.Abort(s)
			if st == Closed {
				if err == nil {
					t.Fatal("ABORT in CLOSED succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := rst[st]; ok {
				srv.expect(want)
			}
			srv.expectNothing()
			srv.wantState(s, Closed)
		})
	}
}

// TestListenSegmentArrives: the four checks of LISTEN.
// Reference: RFC 9293 §3.10.7.2.
func TestListenSegmentArrives(t *testing.T) {
	tests := []struct {
		name  string
		seg   Segment
		code  Code
		emits string
	}{
		{"RST ignored", Segment{Flags: FlagRST, Seq: 5}, CodeListenRstIgnored, ""},
		{"ACK gets RST", Segment{Flags: FlagACK, Seq: 5, Ack: 77}, CodeListenAckSentRst, "R seq=77"},
		{"SYN,ACK gets RST", Segment{Flags: FlagSYN | FlagACK, Seq: 5, Ack: 77}, CodeListenAckSentRst, "R seq=77"},
		{"SYN opens", Segment{Flags: FlagSYN, Seq: 5}, CodeListenSynAccepted, "S. seq=300 ack=6"},
		{"FIN dropped", Segment{Flags: FlagFIN, Seq: 5}, CodeListenOtherDropped, ""},
		{"no flags dropped", Segment{Seq: 5}, CodeListenOtherDropped, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv, _, l := reach(t, Listen)
			tt.seg.Window = 1000
			srv.inject(clientAddr, serverAddr, tt.seg)
			wantExplanation(t, srv.collect(), tt.code)
			if tt.emits != "" {
				srv.expect(tt.emits)
			}
			srv.expectNothing()
			srv.wantState(l, Listen)
		})
	}
}

// TestClosedSegmentArrives: with no endpoint, a RST is dropped and
// anything else gets a RST. Reference: RFC 9293 §3.10.7.1.
func TestClosedSegmentArrives(t *testing.T) {
	tests := []struct {
		seg   Segment
		emits string
	}{
		{Segment{Flags: FlagRST, Seq: 5}, ""},
		{Segment{Flags: FlagACK, Seq: 5, Ack: 9}, "R seq=9"},
		{Segment{Flags: FlagACK | FlagPSH, Seq: 5, Ack: 9, Payload: []byte("abc")}, "R seq=9"},
		{Segment{Flags: FlagSYN, Seq: 5}, "R. seq=0 ack=6"},
		{Segment{Flags: FlagFIN, Seq: 5, Payload: []byte("ab")}, "R. seq=0 ack=8"},
	}
	for _, tt := range tests {
		srv := newSide(t, "server", fixedConfig(300))
		srv.inject(clientAddr, serverAddr, tt.seg)
		if tt.emits != "" {
			srv.expect(tt.emits)
		}
		srv.expectNothing()
	}
}

// TestSynSentSegmentArrives: SEGMENT ARRIVES in SYN-SENT.
// Reference: RFC 9293 §3.10.7.3.
func TestSynSentSegmentArrives(t *testing.T) {
	tests := []struct {
		name  string
		seg   Segment
		code  Code
		emits string
		next  State
	}{
		{"ACK at ISS gets RST", Segment{Flags: FlagACK, Seq: 9, Ack: 300}, CodeSynSentBadAckSentRst, "R seq=300", SynSent},
		{"ACK beyond SND.NXT gets RST", Segment{Flags: FlagACK, Seq: 9, Ack: 302}, CodeSynSentBadAckSentRst, "R seq=302", SynSent},
		{"bad ACK with RST dropped", Segment{Flags: FlagACK | FlagRST, Seq: 9, Ack: 302}, CodeSynSentBadAckRstDropped, "", SynSent},
		{"RST with good ACK refused", Segment{Flags: FlagACK | FlagRST, Seq: 0, Ack: 301}, CodeSynSentRstRefused, "", Closed},
		{"RST without ACK dropped", Segment{Flags: FlagRST, Seq: 9}, CodeSynSentRstNoAckDropped, "", SynSent},
		{"SYN,ACK establishes", Segment{Flags: FlagSYN | FlagACK, Seq: 100, Ack: 301}, CodeSynSentSynAckEstablished, ". seq=301 ack=101", Established},
		{"SYN alone: simultaneous open", Segment{Flags: FlagSYN, Seq: 100}, CodeSynSentSimultaneousOpen, "S. seq=300 ack=101", SynReceived},
		{"neither SYN nor RST dropped", Segment{Flags: FlagACK, Seq: 100, Ack: 301}, CodeSynSentOtherDropped, "", SynSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv, _, s := reach(t, SynSent)
			tt.seg.Window = 1000
			srv.inject(clientAddr, serverAddr, tt.seg)
			wantExplanation(t, srv.collect(), tt.code)
			if tt.emits != "" {
				srv.expect(tt.emits)
			}
			srv.expectNothing()
			srv.wantState(s, tt.next)
		})
	}
}

// TestSynAckWithDataDelivered: text on a SYN,ACK is processed from the
// sixth step. Reference: RFC 9293 §3.10.7.3.
func TestSynAckWithDataDelivered(t *testing.T) {
	_, srv, _, s := reach(t, SynSent)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 100, Ack: 301, Window: 1000, Payload: []byte("banner")})
	srv.expect(". seq=301 ack=107")
	mustRead(t, srv, s, "banner")
}

// TestSynReceivedSegmentArrives: SEGMENT ARRIVES in SYN-RECEIVED.
// Reference: RFC 9293 §3.10.7.4.
func TestSynReceivedSegmentArrives(t *testing.T) {
	tests := []struct {
		name  string
		seg   Segment
		code  Code
		emits string
		next  State
	}{
		{"bad ACK gets RST", Segment{Flags: FlagACK, Seq: 101, Ack: 999}, CodeSynReceivedBadAckSentRst, "R seq=999", SynReceived},
		{"good ACK establishes", Segment{Flags: FlagACK, Seq: 101, Ack: 301}, CodeSynReceivedAckEstablished, "", Established},
		{"RST returns to LISTEN", Segment{Flags: FlagRST, Seq: 101}, CodeRstReturnToListen, "", Closed},
		{"new SYN in window returns to LISTEN", Segment{Flags: FlagSYN, Seq: 150}, CodeSynReturnToListen, "", Closed},
		{"retransmitted SYN resends SYN,ACK", Segment{Flags: FlagSYN, Seq: 100}, CodeDuplicateSynResentSynAck, "S. seq=300 ack=101", SynReceived},
		{"no ACK dropped", Segment{Seq: 101, Payload: []byte("x")}, CodeNoAckDropped, "", SynReceived},
		{"FIN with ACK: ESTABLISHED then CLOSE-WAIT", Segment{Flags: FlagACK | FlagFIN, Seq: 101, Ack: 301}, CodeFinReceived, ". seq=301 ack=102", CloseWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv, _, s := reach(t, SynReceived)
			tt.seg.Window = 1000
			srv.inject(clientAddr, serverAddr, tt.seg)
			wantExplanation(t, srv.collect(), tt.code)
			if tt.emits != "" {
				srv.expect(tt.emits)
			}
			srv.expectNothing()
			srv.wantState(s, tt.next)
		})
	}
}

// TestTextAfterFinIgnored: in CLOSE-WAIT, CLOSING, LAST-ACK and TIME-WAIT a
// FIN has been received, so text is not delivered.
// Reference: RFC 9293 §3.10.7.4 seventh step.
func TestTextAfterFinIgnored(t *testing.T) {
	for _, st := range []State{CloseWait, Closing, LastAck} {
		t.Run(st.String(), func(t *testing.T) {
			_, srv, _, s := reach(t, st)
			in, _ := srv.e.Endpoint(s)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: in.RcvNxt, Ack: in.SndUna, Window: 1000, Payload: []byte("late")})
			r := srv.collect()
			wantExplanation(t, r, CodeDataAfterFinIgnored)
			if srv.e.Readable(s) != 0 {
				t.Fatal("text after FIN was delivered")
			}
		})
	}
}

// TestFastRetransmit: three duplicate ACKs resend the first unacknowledged
// segment before the RTO. Reference: RFC 5681 §3.2.
func TestFastRetransmit(t *testing.T) {
	cfg := renoConfig(fixedConfig(100))
	cfg.MSS = 100
	cli, _, c, _ := established(t, cfg, fixedConfig(300))
	data := make([]byte, 500)
	mustSend(t, cli, c, string(data))
	for i := 0; i < 5; i++ {
		want := fmt.Sprintf(". seq=%d ack=301 len=100", 101+100*i)
		if i == 4 {
			want = "P" + want // the last segment of the write
		}
		cli.expect(want)
	}
	for i := 0; i < 3; i++ {
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 101, Window: 65535})
	}
	wantExplanation(t, cli.collect(), CodeFastRetransmit)
	cli.expect(". seq=101 ack=301 len=100")
	in, _ := cli.e.Endpoint(c)
	if in.Ssthresh != 250 || in.Cwnd != 250+3*100 {
		t.Fatalf("ssthresh %d cwnd %d, want 250 and 550", in.Ssthresh, in.Cwnd)
	}
}

// TestDelayedAck: with delayed ACKs on, one small segment is acknowledged
// when the timer fires, two full-sized segments at once.
// Reference: RFC 9293 §3.8.6.3, RFC 5681 §4.2.
func TestDelayedAck(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.NoDelayedAck = false
	cfg.MSS = 100
	cli, srv, c, _ := established(t, fixedConfig(100), cfg)
	mustSend(t, cli, c, "x")
	relay(cli, srv, "P. seq=101 ack=301 len=1")
	srv.expectNothing()
	srv.e.AdvanceTo(199 * time.Millisecond)
	srv.expectNothing()
	srv.e.AdvanceTo(200 * time.Millisecond)
	wantExplanation(t, srv.collect(), CodeDelayedAckSent)
	relay(srv, cli, ". seq=301 ack=102")
	// Two full-sized segments: ACK at once.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 102, Ack: 301, Window: 1000, Payload: make([]byte, 100)})
	srv.expectNothing()
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 202, Ack: 301, Window: 1000, Payload: make([]byte, 100)})
	srv.expect(". seq=301 ack=302")
}

// TestNagle: with Nagle on, a small write waits while data is outstanding.
// Reference: RFC 9293 §3.7.4.
func TestNagle(t *testing.T) {
	cli, srv, c, _ := defaultPair(t)
	mustSend(t, cli, c, "a")
	p := cli.expect("P. seq=101 ack=301 len=1")
	mustSend(t, cli, c, "b")
	mustSend(t, cli, c, "c")
	cli.expectNothing() // held: "a" is unacknowledged
	srv.deliver(p)
	relay(srv, cli, ". seq=301 ack=102")
	cli.expect("P. seq=102 ack=301 len=2")
	// With Nagle off, each write goes at once.
	cfg := fixedConfig(100)
	cfg.NoNagle = true
	cli2, _, c2, _ := established(t, cfg, fixedConfig(300))
	mustSend(t, cli2, c2, "a")
	mustSend(t, cli2, c2, "b")
	cli2.expect("P. seq=101 ack=301 len=1")
	cli2.expect("P. seq=102 ack=301 len=1")
}

// TestWindowScaleAppliedToSendWindow: after negotiation the peer's window
// field is shifted by its scale. Reference: RFC 7323 §2.3.
func TestWindowScaleAppliedToSendWindow(t *testing.T) {
	srv := newSide(t, "server", fixedConfig(300))
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000, Options: Options{HasWScale: true, WScale: 3}})
	srv.collect()
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
	s, _ := srv.e.Accept(l)
	in, _ := srv.e.Endpoint(s)
	if in.SndWnd != 8000 || in.SndScale != 3 {
		t.Fatalf("SND.WND %d scale %d, want 8000 and 3", in.SndWnd, in.SndScale)
	}
}

// TestFinWait1FinAckGoesToTimeWait: a FIN that also acknowledges our FIN
// takes FIN-WAIT-1 straight to TIME-WAIT. Reference: RFC 9293 §3.10.7.4
// eighth step (FIN-WAIT-1).
func TestFinWait1FinAckGoesToTimeWait(t *testing.T) {
	_, srv, _, s := reach(t, FinWait1)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagFIN, Seq: 101, Ack: 302, Window: 1000})
	srv.expect(". seq=302 ack=102")
	srv.wantState(s, TimeWait)
}

// TestAckBelowWindowChallenged: an ACK older than SND.UNA-MAX.SND.WND is a
// blind-injection attempt: answered with an ACK and dropped.
// Reference: RFC 5961 §5.2.
func TestAckBelowWindowChallenged(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	oldAck := Seq(301)
	oldAck -= 70000 // below SND.UNA-MAX.SND.WND (65535)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: oldAck, Window: 1000, Payload: []byte("inj")})
	wantExplanation(t, srv.collect(), CodeAckOutsideRangeChallenge)
	srv.expect(". seq=301 ack=101")
	if srv.e.Readable(s) != 0 {
		t.Fatal("injected data accepted")
	}
}

// TestWindowUpdateOnlyFromNewerSegments: SND.WND changes only when
// SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK.
// Reference: RFC 9293 §3.10.7.4 fifth step (ESTABLISHED).
func TestWindowUpdateOnlyFromNewerSegments(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 5000})
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 4000})
	if in, _ := srv.e.Endpoint(s); in.SndWnd != 4000 {
		t.Fatalf("SND.WND %d, want 4000 (same WL1/WL2 updates)", in.SndWnd)
	}
	// Data that advances SEG.SEQ updates; an older SEG.SEQ afterwards does not.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 3000, Payload: []byte("ab")})
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 9000})
	if in, _ := srv.e.Endpoint(s); in.SndWnd != 3000 {
		t.Fatalf("SND.WND %d, want 3000: an older segment must not update it", in.SndWnd)
	}
}

// TestSynReceivedGiveUp: a half-open connection whose SYN,ACK is never
// acknowledged is dropped after SynAckRetries, freeing its SYN-queue slot.
// Reference: RFC 9293 §3.8.3, §3.10.8.
func TestSynReceivedGiveUp(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.SynAckRetries = 1
	srv := newSide(t, "server", cfg)
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
	srv.expect("S. seq=300 ack=101")
	srv.e.AdvanceTo(time.Second)
	srv.expect("S. seq=300 ack=101")
	srv.e.AdvanceTo(3 * time.Second)
	wantExplanation(t, srv.collect(), CodeSynReceivedGiveUp)
	srv.wantState(2, Closed)
	if in, _ := srv.e.Endpoint(l); in.SynQueue != 0 {
		t.Fatalf("SYN queue %d after give-up", in.SynQueue)
	}
}

// TestUrgentDataInline: urgent data is delivered in line with the rest.
// Reference: RFC 9293 §3.10.7.4 sixth step, RFC 6093 §5.
func TestUrgentDataInline(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagURG, Seq: 101, Ack: 301, Window: 1000, Urgent: 2, Payload: []byte("!!rest")})
	wantExplanation(t, srv.collect(), CodeUrgentData)
	srv.expect(". seq=301 ack=107")
	mustRead(t, srv, s, "!!rest")
}

// TestEverySegmentExplained: a segment that changes nothing is still
// explained, so a grader always learns what happened to it.
func TestEverySegmentExplained(t *testing.T) {
	_, srv, _, _ := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535})
	wantExplanation(t, srv.collect(), CodeSegmentNoChange)
}

// TestCloseClosedListener: closing a listener twice is "connection does not
// exist" and leaves a newer listener on the same address alone.
// Reference: RFC 9293 §3.10.4 (CLOSED).
func TestCloseClosedListener(t *testing.T) {
	srv := newSide(t, "server", fixedConfig(300))
	l1, _ := srv.e.Listen(serverAddr, 0)
	if err := srv.e.Close(l1); err != nil {
		t.Fatal(err)
	}
	l2, err := srv.e.Listen(serverAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []func(EndpointID) error{srv.e.Close, srv.e.Abort} {
		if err := call(l1); !errors.Is(err, ErrConnectionDoesNotExist) {
			t.Fatalf("second close of a listener = %v", err)
		}
	}
	srv.wantState(l2, Listen)
	srv.collect()
	srv.out = nil
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
	srv.expect("S. seq=300 ack=101")
}

// TestFinWait2TimeoutAfterClose: a closed (orphaned) connection does not
// wait in FIN-WAIT-2 forever for a FIN that never comes; one that only shut
// down its sending side does (it may still read).
func TestFinWait2TimeoutAfterClose(t *testing.T) {
	for _, closeIt := range []bool{true, false} {
		_, srv, _, s := reach(t, FinWait2)
		if closeIt {
			srv.e.Close(s)
		}
		srv.e.AdvanceTo(61 * time.Second)
		if closeIt {
			wantExplanation(t, srv.collect(), CodeFinWait2Timeout)
			srv.wantState(s, Closed)
		} else {
			srv.wantState(s, FinWait2)
		}
	}
}

// TestTimeWaitReopenRFC6191: after a connection with timestamps, a SYN in
// TIME-WAIT reopens it when its timestamp is newer, when it is equal and
// SEG.SEQ is above RCV.NXT, and when it has no timestamp but SEG.SEQ is
// above RCV.NXT; an older timestamp does not. Reference: RFC 6191 §2,
// RFC 9293 §3.6.1.
func TestTimeWaitReopenRFC6191(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		seq    Seq
		reopen bool
	}{
		{"newer timestamp", Options{HasTimestamp: true, TSVal: 2000}, 50, true},
		{"equal timestamp, higher seq", Options{HasTimestamp: true, TSVal: 1002}, 5000, true},
		{"equal timestamp, lower seq", Options{HasTimestamp: true, TSVal: 1002}, 50, false},
		{"older timestamp", Options{HasTimestamp: true, TSVal: 900}, 5000, false},
		{"no timestamp, higher seq", Options{}, 5000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fixedConfig(300)
			cfg.NoTimestamps = false
			srv := newSide(t, "server", cfg)
			l, _ := srv.e.Listen(serverAddr, 0)
			ts := func(v uint32) Options { return Options{HasTimestamp: true, TSVal: v} }
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000, Options: ts(1000)})
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Options: ts(1001)})
			s, _ := srv.e.Accept(l)
			srv.e.Shutdown(s)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagFIN, Seq: 101, Ack: 302, Window: 1000, Options: ts(1002)})
			srv.wantState(s, TimeWait)
			srv.collect()
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: tt.seq, Window: 1000, Options: tt.opts})
			if got := hasExplanation(srv.collect(), CodeTimeWaitReopened); got != tt.reopen {
				t.Fatalf("reopened = %v, want %v", got, tt.reopen)
			}
		})
	}
}

// TestSynCookiesRespectMaxEndpoints: connections rebuilt from SYN cookies
// count against MaxEndpoints like any other.
func TestSynCookiesRespectMaxEndpoints(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.SynCookies, cfg.MaxEndpoints = true, 2
	srv := newSide(t, "server", cfg)
	srv.e.Listen(serverAddr, 0)
	// The listener and one half-open connection reach the limit; the next
	// SYN is answered with a cookie, and its ACK must not exceed the limit.
	srv.inject(netip.MustParseAddrPort("10.0.0.9:1"), serverAddr, Segment{Flags: FlagSYN, Seq: 7, Window: 1000})
	srv.collect()
	srv.out = nil
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000, Options: Options{MSS: 1460, HasMSS: true}})
	srv.collect()
	cookie := srv.out[0].Segment.Seq
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: cookie + 1, Window: 1000})
	live := 0
	for _, in := range srv.e.Endpoints() {
		if in.State != Closed {
			live++
		}
	}
	if live > 2 {
		t.Fatalf("%d live endpoints, limit 2", live)
	}
}

// TestLimitedTransmit: each of the first two duplicate ACKs lets one new
// segment out beyond cwnd, which itself does not change; the third starts
// fast retransmit. Reference: RFC 3042 §2.
func TestLimitedTransmit(t *testing.T) {
	cfg := fixedConfig(100)
	cfg.MSS, cfg.InitialWindow = 100, 2
	cli, _, c, _ := established(t, cfg, fixedConfig(300))
	mustSend(t, cli, c, string(make([]byte, 600)))
	cli.expect(". seq=101 ack=301 len=100")
	cli.expect(". seq=201 ack=301 len=100")
	cli.expectNothing() // cwnd is two segments
	dup := Segment{Flags: FlagACK, Seq: 301, Ack: 101, Window: 65535}
	cli.inject(serverAddr, clientAddr, dup)
	cli.expect(". seq=301 ack=301 len=100")
	cli.inject(serverAddr, clientAddr, dup)
	cli.expect(". seq=401 ack=301 len=100")
	if in, _ := cli.e.Endpoint(c); in.Cwnd != 200 {
		t.Fatalf("cwnd %d after limited transmit, want 200 (unchanged)", in.Cwnd)
	}
	cli.inject(serverAddr, clientAddr, dup)
	wantExplanation(t, cli.collect(), CodeFastRetransmit)
	cli.expect(". seq=101 ack=301 len=100")
}
