package fsm

import (
	"errors"
	"testing"
	"time"
)

// TestKeepAliveOffByDefault: an idle connection sends nothing, however long
// it stays idle. Reference: RFC 1122 §4.2.3.6 (keep-alive MUST default to
// off), RFC 9293 §3.8.4.
func TestKeepAliveOffByDefault(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.e.AdvanceTo(24 * time.Hour)
	srv.expectNothing()
	srv.wantState(s, Established)
	if ka, _ := srv.e.KeepAlive(s); ka.Enabled || ka.Idle != 2*time.Hour {
		t.Fatalf("keep-alive %+v, want off with a 2 h idle time", ka)
	}
}

// TestKeepAliveProbeAnswered: with SO_KEEPALIVE on and the default idle
// time, the first probe goes out two hours after the last segment; the
// peer answers it like any segment left of its window, and the next probe
// waits two hours from that answer.
//
//	0 h  (established, idle)
//	2 h  > .  seq=300 ack=101        SEG.SEQ = SND.NXT-1, no data
//	     < .  seq=101 ack=301        the peer's ACK
//	4 h  > .  seq=300 ack=101
//
// Reference: RFC 9293 §3.8.4, RFC 1122 §4.2.3.6.
func TestKeepAliveProbeAnswered(t *testing.T) {
	cli, srv, _, s := defaultPair(t)
	if err := srv.e.SetKeepAlive(s, KeepAlive{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	srv.e.AdvanceTo(2*time.Hour - time.Millisecond)
	srv.expectNothing()
	srv.e.AdvanceTo(2 * time.Hour)
	wantExplanation(t, srv.collect(), CodeKeepAliveProbe)
	relay(srv, cli, ". seq=300 ack=101")
	relay(cli, srv, ". seq=101 ack=301")
	srv.e.AdvanceTo(4*time.Hour - time.Millisecond)
	srv.expectNothing()
	srv.e.AdvanceTo(4 * time.Hour)
	srv.expect(". seq=300 ack=101")
	srv.wantState(s, Established)
}

// TestKeepAliveIdleCountsFromLastSegment: data from the peer restarts the
// idle time, so a probe is only sent after Idle of silence.
// Reference: RFC 1122 §4.2.3.6 (only when no data or acknowledgment
// packets have been received within the interval).
func TestKeepAliveIdleCountsFromLastSegment(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.e.SetKeepAlive(s, KeepAlive{Enabled: true, Idle: time.Minute})
	srv.e.AdvanceTo(40 * time.Second)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagPSH, Seq: 101, Ack: 301, Window: 65535, Payload: []byte("hi")})
	srv.expect(". seq=301 ack=103")
	srv.e.AdvanceTo(100*time.Second - time.Millisecond)
	srv.expectNothing()
	srv.e.AdvanceTo(100 * time.Second)
	srv.expect(". seq=300 ack=103")
}

// TestKeepAliveUnansweredAborts: TCP_KEEPIDLE 10 s, TCP_KEEPINTVL 5 s,
// TCP_KEEPCNT 3: probes at 10, 15 and 20 s go unanswered, and at 25 s the
// connection is aborted with a RST and "timed out".
//
//	10 s  > . seq=300 ack=101
//	15 s  > . seq=300 ack=101
//	20 s  > . seq=300 ack=101
//	25 s  > R seq=301
//
// Reference: RFC 9293 §3.8.4, RFC 1122 §4.2.3.6.
func TestKeepAliveUnansweredAborts(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.e.SetKeepAlive(s, KeepAlive{Enabled: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3})
	for _, at := range []time.Duration{10, 15, 20} {
		srv.e.AdvanceTo(at * time.Second)
		srv.expect(". seq=300 ack=101")
	}
	srv.e.AdvanceTo(25*time.Second - time.Millisecond)
	srv.expectNothing()
	srv.e.AdvanceTo(25 * time.Second)
	r := srv.collect()
	wantExplanation(t, r, CodeKeepAliveGiveUp)
	srv.expect("R seq=301")
	srv.wantState(s, Closed)
	if _, err := srv.e.Send(s, []byte("x")); !errors.Is(err, ErrTimedOut) {
		t.Fatalf("Send after the abort = %v, want timed out", err)
	}
}

// TestKeepAliveInheritedFromListener: a connection accepted from a
// listener starts with the listener's settings, as accept(2) does.
func TestKeepAliveInheritedFromListener(t *testing.T) {
	srv := newSide(t, "server", fixedConfig(300))
	l, _ := srv.e.Listen(serverAddr, 0)
	want := KeepAlive{Enabled: true, Idle: 30 * time.Second, Interval: time.Second, Count: 2}
	if err := srv.e.SetKeepAlive(l, want); err != nil {
		t.Fatal(err)
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 65535})
	srv.expect("S. seq=300 ack=101")
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535})
	s, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.e.KeepAlive(s); got != want {
		t.Fatalf("accepted connection keep-alive %+v, want %+v", got, want)
	}
	srv.e.AdvanceTo(30 * time.Second)
	srv.expect(". seq=300 ack=101")
}

// TestKeepInitBoundsTheOpen: FreeBSD's TCP_KEEPINIT (75 s there) gives up
// an open that has not completed, before R2 for the SYN would.
//
//	 0 s  > S seq=100
//	 1 s ... 63 s  > S seq=100   (backed off)
//	75 s  KEEPINIT_TIMEOUT, CLOSED, "timed out"
func TestKeepInitBoundsTheOpen(t *testing.T) {
	cli := newSide(t, "client", fixedConfig(100))
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	cli.e.SetKeepAlive(c, KeepAlive{Init: 75 * time.Second})
	cli.expect("S seq=100")
	for _, at := range []time.Duration{1, 3, 7, 15, 31, 63} {
		cli.e.AdvanceTo(at * time.Second)
		cli.expect("S seq=100")
	}
	wantOpenGivenUp(t, cli, c, 75*time.Second, CodeKeepInitTimeout)
}

// TestKeepInitLengthensTheOpen: a TCP_KEEPINIT longer than R2 for the SYN
// (3 minutes) is the application's bound instead: the SYN goes on being
// retransmitted, every MaxRTO (60 s) once backed off, until it expires,
// as FreeBSD does (its snd-syn-rtx-max-number scripts).
//
//	  0 s ... 123 s  > S seq=100   (backed off)
//	183 s, 243 s     > S seq=100   (beyond the 3 minutes of SynTimeout)
//	250 s            KEEPINIT_TIMEOUT, CLOSED, "timed out"
func TestKeepInitLengthensTheOpen(t *testing.T) {
	cli := newSide(t, "client", fixedConfig(100))
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	cli.e.SetKeepAlive(c, KeepAlive{Init: 250 * time.Second})
	cli.expect("S seq=100")
	for _, at := range []time.Duration{1, 3, 7, 15, 31, 63, 123, 183, 243} {
		cli.e.AdvanceTo(at*time.Second - time.Millisecond)
		cli.expectNothing()
		cli.e.AdvanceTo(at * time.Second)
		cli.expect("S seq=100")
	}
	wantOpenGivenUp(t, cli, c, 250*time.Second, CodeKeepInitTimeout)
}
