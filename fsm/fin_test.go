package fsm

import (
	"errors"
	"testing"
	"time"
)

// TestFinAgainAcknowledged: once the peer's FIN is in, a FIN that passes
// the acceptability test is a retransmission wherever in the window it
// claims to sit. The server acknowledges RCV.NXT (which does not move
// again) and stays put; in TIME-WAIT the 2·MSL timeout starts over. The
// exact duplicate (SEG.SEQ = RCV.NXT-1) lies left of the window: the first
// check answers it, and TIME-WAIT restarts its timeout for it too.
//
//	(server in STATE, RCV.NXT=102)
//	< F. seq=SEQ ack=SND.UNA
//	> .  seq=SND.NXT ack=102
//
// Reference: RFC 9293 §3.10.7.4 (fifth step, TIME-WAIT; eighth step).
func TestFinAgainAcknowledged(t *testing.T) {
	states := []struct {
		st       State
		una, nxt Seq // the server's SND.UNA and SND.NXT in that state
	}{
		{CloseWait, 301, 301},
		{Closing, 301, 302},
		{LastAck, 301, 302},
		{TimeWait, 302, 302},
	}
	for _, tc := range states {
		for _, where := range []struct {
			name string
			seq  Seq
			code Code
		}{
			{"exact-duplicate", 101, CodeUnacceptableSentAck},
			{"left-edge", 102, CodeFinAgainAcked},
			{"middle", 103, CodeFinAgainAcked},
			{"with-data", 102, CodeFinAgainAcked},
		} {
			t.Run(tc.st.String()+"/"+where.name, func(t *testing.T) {
				_, srv, _, s := reach(t, tc.st)
				srv.e.AdvanceTo(500 * time.Millisecond)
				srv.collect()
				srv.out = nil
				seg := Segment{Flags: FlagFIN | FlagACK, Seq: where.seq, Ack: tc.una, Window: 65535}
				if where.name == "with-data" {
					seg.Payload = []byte("late")
				}
				srv.inject(clientAddr, serverAddr, seg)
				r := srv.collect()
				code := where.code
				if tc.st == TimeWait {
					code = CodeFinTimeWaitReAck
				}
				wantExplanation(t, r, code)
				srv.expect(segSummary(&Segment{Flags: FlagACK, Seq: tc.nxt, Ack: 102}))
				srv.expectNothing()
				srv.wantState(s, tc.st)
				if tc.st != TimeWait {
					return
				}
				in, _ := srv.e.Endpoint(s)
				want := 500*time.Millisecond + 2*srv.e.Config().MSL
				if got := timerAt(in, TimerTimeWait); got != want {
					t.Fatalf("2·MSL timer at %v, want it restarted to %v", got, want)
				}
			})
		}
	}
}

// TestFinBeyondWindowInTimeWait: a FIN right of the window fails the first
// check: it gets the ACK every unacceptable segment gets, and the 2·MSL
// timeout is not restarted by it. Reference: RFC 9293 §3.10.7.4 first check.
func TestFinBeyondWindowInTimeWait(t *testing.T) {
	_, srv, _, s := reach(t, TimeWait)
	in, _ := srv.e.Endpoint(s)
	srv.e.AdvanceTo(500 * time.Millisecond)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagFIN | FlagACK, Seq: in.RcvNxt.Add(Size(in.RcvWnd)), Ack: 302, Window: 65535})
	wantExplanation(t, srv.collect(), CodeUnacceptableSentAck)
	srv.expect(". seq=302 ack=102")
	srv.e.AdvanceTo(2 * srv.e.Config().MSL)
	srv.wantState(s, Closed)
}

// timerAt is the deadline of the endpoint's timer of that kind, 0 if unarmed.
func timerAt(in EndpointInfo, k TimerKind) time.Duration {
	for _, tm := range in.Timers {
		if tm.Kind == k {
			return tm.Deadline
		}
	}
	return 0
}

// TestSynRetransmittedForThreeMinutes: with the defaults an unanswered SYN
// is resent with the RTO doubling up to MaxRTO, and the open is given up
// exactly 3 minutes after the first SYN, not at the next retransmission.
//
//	 0 s  > S seq=100
//	 1 s  > S seq=100   (RTO 1 s, then 2, 4, ... 60 s)
//	 ...
//	123 s > S seq=100
//	180 s   SYN_GIVE_UP, CLOSED, "timed out"
//
// Reference: RFC 9293 §3.8.3 (R2 for a SYN at least 3 minutes),
// RFC 1122 §4.2.3.5, RFC 6298 §5.5.
func TestSynRetransmittedForThreeMinutes(t *testing.T) {
	cli := newSide(t, "client", fixedConfig(100))
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	cli.expect("S seq=100")
	for _, at := range []int{1, 3, 7, 15, 31, 63, 123} {
		cli.e.AdvanceTo(time.Duration(at)*time.Second - time.Millisecond)
		cli.expectNothing()
		cli.e.AdvanceTo(time.Duration(at) * time.Second)
		cli.expect("S seq=100")
	}
	wantOpenGivenUp(t, cli, c, 180*time.Second, CodeSynGiveUp)
}

// wantOpenGivenUp checks that the open of c is still under way 1 ms before
// at and given up, with code and "timed out", at at.
func wantOpenGivenUp(t *testing.T, cli *side, c EndpointID, at time.Duration, code Code) {
	t.Helper()
	cli.e.AdvanceTo(at - time.Millisecond)
	cli.wantState(c, SynSent)
	cli.e.AdvanceTo(at)
	wantExplanation(t, cli.collect(), code)
	cli.expectNothing()
	cli.wantState(c, Closed)
	if in, _ := cli.e.Endpoint(c); !errors.Is(in.Err, ErrTimedOut) {
		t.Fatalf("error %v, want timed out", in.Err)
	}
}
