package fsm

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestSimOpenDupAck: after a simultaneous open the peer's SYN,ACK
// completes the open under both values; under simopen_dup_ack it is also
// answered with an ACK, after the FIN a CLOSE in SYN-RECEIVED queued.
//
//	connect; < S seq=100   > S. seq=300 ack=101
//	[shutdown]; < S. seq=100 ack=301
//	0: [> F. seq=301]           1: [> F. seq=301] > . ack=101
//
// Reference: RFC 9293 §3.5 (Figure 8), §3.10.7.4 (first check).
func TestSimOpenDupAck(t *testing.T) {
	tests := []struct {
		name     string
		on, shut bool
		want     []string
	}{
		{"rfc", false, false, nil},
		{"simopen_dup_ack", true, false, []string{". seq=301 ack=101"}},
		{"rfc, FIN queued", false, true, []string{"F. seq=301 ack=101"}},
		{"simopen_dup_ack, FIN queued", true, true, []string{"F. seq=301 ack=101", ". seq=302 ack=101"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSide(t, "server", withSwitches(t, 300, "simopen_dup_ack", b2s(tt.on)))
			s, _ := srv.e.Connect(serverAddr, clientAddr)
			srv.expect("S seq=300")
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
			srv.expect("S. seq=300 ack=101")
			if tt.shut {
				srv.e.Shutdown(s)
			}
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 100, Ack: 301, Window: 1000})
			out := srv.collect()
			if tt.on {
				wantExplanation(t, out, CodeSimOpenDupAck)
			}
			for _, w := range tt.want {
				srv.expect(w)
			}
			srv.expectNothing()
		})
	}
}

// TestSynSentBadAckRexmit: an unacceptable ACK in SYN-SENT gets its RST
// under both values; under synsent_badack_rexmit=8 the SYN is also sent
// again 8 ms later, once (the retransmitted SYN's timer backs off as
// usual, so a second bad ACK does not re-arm it).
//
//	< S. ack=5   > R seq=5   [8 ms: > S seq=300]
//
// Reference: RFC 9293 §3.10.7.3 (first check), §3.8.1.
func TestSynSentBadAckRexmit(t *testing.T) {
	for _, ms := range []string{"0", "8"} {
		t.Run(ms, func(t *testing.T) {
			srv := newSide(t, "server", withSwitches(t, 300, "synsent_badack_rexmit", ms))
			srv.e.Connect(serverAddr, clientAddr)
			srv.expect("S seq=300")
			for range 2 {
				srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 100, Ack: 5, Window: 1000})
				srv.expect("R seq=5")
				srv.e.AdvanceTo(srv.e.Now() + 10*time.Millisecond)
				if ms == "8" {
					srv.expect("S seq=300")
					ms = "done" // retransmitted: no second early SYN
				}
				srv.expectNothing()
			}
		})
	}
}

// TestSynTextDiscard: text on a SYN is queued and acknowledged by the
// handshake under rfc, dropped under syn_text_discard (the SYN,ACK
// acknowledges only the SYN); a SYN,FIN at a listener is dropped.
//
//	< S seq=100 "hello"   rfc: > S. ack=101, delivered after the ACK
//	                      syn_text_discard=1: > S. ack=101, nothing to read
//	< SF seq=100          syn_text_discard=1: no reply
//
// Reference: RFC 9293 §3.10.7.2 (third check), RFC 7413 §4.2.2.
func TestSynTextDiscard(t *testing.T) {
	for _, on := range []bool{false, true} {
		srv := newSide(t, "server", withSwitches(t, 300, "syn_text_discard", b2s(on)))
		srv.e.Listen(serverAddr, 0)
		if on {
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagFIN, Seq: 500, Window: 1000})
			wantExplanation(t, srv.collect(), CodeSynFinListenDropped)
			srv.expectNothing()
		}
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000, Payload: []byte("hello")})
		out := srv.collect()
		if on {
			wantExplanation(t, out, CodeSynTextDiscarded)
		}
		srv.expect("S. seq=300 ack=101")
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
		srv.collect()
		if !on {
			mustRead(t, srv, 2, "hello")
		}
	}
}

// TestSynLinearTimeouts: with syn_retries=2 an unanswered SYN goes at 0,
// 1 and 3 s and the open ends at 7 s under rfc; under
// syn_linear_timeouts=4 it goes at 0, 1, 2, 3, 4, 5 s and still ends at
// 7 s, the time two doubling retransmissions would take.
//
// Reference: RFC 6298 §5.5, RFC 9293 §3.8.1.
func TestSynLinearTimeouts(t *testing.T) {
	tests := []struct {
		linear string
		syns   []time.Duration // when each retransmission goes
	}{
		{"0", []time.Duration{1, 3}},
		{"4", []time.Duration{1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.linear, func(t *testing.T) {
			cfg := withSwitches(t, 300, "syn_linear_timeouts", tt.linear, "syn_retries", "2", "rexmit_initial", "1000")
			cli := newSide(t, "client", cfg)
			c, _ := cli.e.Connect(clientAddr, serverAddr)
			cli.expect("S seq=300")
			for _, at := range tt.syns {
				cli.e.AdvanceTo(at*time.Second - time.Millisecond)
				cli.expectNothing()
				cli.e.AdvanceTo(at * time.Second)
				cli.expect("S seq=300")
			}
			cli.e.AdvanceTo(7*time.Second - time.Millisecond)
			cli.wantState(c, SynSent)
			cli.e.AdvanceTo(7 * time.Second)
			cli.expectNothing()
			cli.wantState(c, Closed)
		})
	}
}

// TestInvalidRateLimit: two ACKs of unsent data 10 ms apart each get a
// challenge ACK under rfc; under invalid_ratelimit=500 the second gets
// none, and one 500 ms after the first gets one again.
//
// Reference: RFC 5961 §5.2 and §7.
func TestInvalidRateLimit(t *testing.T) {
	for _, limit := range []string{"0", "500"} {
		t.Run(limit, func(t *testing.T) {
			_, srv, _, _ := established(t, fixedConfig(100), withSwitches(t, 300, "invalid_ratelimit", limit))
			bad := Segment{Flags: FlagACK, Seq: 101, Ack: 351, Window: 65535}
			srv.inject(clientAddr, serverAddr, bad)
			srv.expect(". seq=301 ack=101")
			srv.e.AdvanceTo(srv.e.Now() + 10*time.Millisecond)
			srv.inject(clientAddr, serverAddr, bad)
			if limit == "0" {
				srv.expect(". seq=301 ack=101")
			} else {
				wantExplanation(t, srv.collect(), CodeInvalidRateLimited)
				srv.expectNothing()
			}
			srv.e.AdvanceTo(srv.e.Now() + 500*time.Millisecond)
			srv.inject(clientAddr, serverAddr, bad)
			srv.expect(". seq=301 ack=101")
		})
	}
}

// TestZWPBareAck: with the peer's window closed, the persist timer probes
// after one RTO and backs off under both values; under zwp_bare_ack the
// probe is a bare ACK at SND.UNA - 1 (the receiver answers it with an ACK
// and drops nothing), otherwise one byte of new data. When the window
// opens, the queued data flows.
//
//	0: 1 s > . seq=111 len=1   3 s > . seq=111 len=1
//	1: 1 s > . seq=110         3 s > . seq=110
//
// Reference: RFC 9293 §3.8.6.1, §3.10.7.4 (first check); RFC 1122 §4.2.2.17.
func TestZWPBareAck(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(b2s(on), func(t *testing.T) {
			srvCfg := fixedConfig(300)
			srvCfg.RecvBuffer = 10
			srvCfg.NoWindowScale = true
			cli, srv, c, s := established(t, withSwitches(t, 100, "zwp_bare_ack", b2s(on)), srvCfg)
			mustSend(t, cli, c, "0123456789ABCDEF")
			relay(cli, srv, ". seq=101 ack=301 len=10")
			relay(srv, cli, ". seq=301 ack=111") // window 0
			cli.expectNothing()
			probe, code := ". seq=111 ack=301 len=1", CodePersistProbe
			if on {
				probe, code = ". seq=110 ack=301", CodeZeroWindowBareAckProbe
			}
			for _, at := range []time.Duration{time.Second, 3 * time.Second} { // backed off to 2 s
				cli.e.AdvanceTo(at - time.Millisecond)
				cli.expectNothing()
				cli.e.AdvanceTo(at)
				wantExplanation(t, cli.collect(), code)
				relay(cli, srv, probe)
				relay(srv, cli, ". seq=301 ack=111")
			}
			mustRead(t, srv, s, "0123456789")
			relay(srv, cli, ". seq=301 ack=111") // window update
			relay(cli, srv, "P. seq=111 ack=301 len=6")
			relay(srv, cli, ". seq=301 ack=117")
			mustRead(t, srv, s, "ABCDEF")
		})
	}
}

// TestRcvBeyondWindow: a segment that starts in the 10-byte window and
// ends past its right edge is trimmed to the window under rcv_beyond_window=0;
// under 1 it is taken whole while nothing waits to be read, and dropped
// whole (answered with an ACK) once text is buffered.
//
//	empty queue:   < . seq=101 len=16    0: > . ack=111   1: > . ack=117
//	4 bytes held:  < . seq=105 len=10    0: > . ack=111   1: > . ack=105
//
// Reference: RFC 9293 §3.10.7.4 (first check), §3.8.6.
func TestRcvBeyondWindow(t *testing.T) {
	tests := []struct {
		name     string
		on       bool
		held     int // bytes buffered, unread, before the segment
		len      int
		wantAck  uint32
		wantCode Code
		read     int // bytes the application can then read
	}{
		{"rfc, empty queue", false, 0, 16, 111, CodeDataTrimmed, 10},
		{"rcv_beyond_window, empty queue", true, 0, 16, 117, CodeBeyondWindowTaken, 16},
		{"rfc, text held", false, 4, 10, 111, CodeDataTrimmed, 10},
		{"rcv_beyond_window, text held", true, 4, 10, 105, CodeBeyondWindowDropped, 4},
		{"rcv_beyond_window, inside the window", true, 4, 6, 111, CodeDataInOrder, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srvCfg := withSwitches(t, 300, "rcv_beyond_window", b2s(tt.on))
			srvCfg.RecvBuffer, srvCfg.NoWindowScale = 10, true
			_, srv, _, s := established(t, fixedConfig(100), srvCfg)
			seq := uint32(101)
			if tt.held > 0 {
				srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: Seq(seq), Ack: 301, Window: 1000, Payload: make([]byte, tt.held)})
				srv.expect(". seq=301 ack=105")
				seq += uint32(tt.held)
			}
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: Seq(seq), Ack: 301, Window: 1000, Payload: make([]byte, tt.len)})
			out := srv.collect()
			wantExplanation(t, out, tt.wantCode)
			srv.expect(fmt.Sprintf(". seq=301 ack=%d", tt.wantAck))
			srv.expectNothing()
			buf := make([]byte, 100)
			if n, err := srv.e.Receive(s, buf); err != nil || n != tt.read {
				t.Fatalf("Receive = %d, %v; want %d bytes", n, err, tt.read)
			}
		})
	}
}

// TestQuickAckSmallWindow: under quickack=16, data is acknowledged at once
// until an ACK offers a window below half the receive buffer; from then on
// data waits for the delayed-ACK timer. With a large buffer the same data
// keeps quick-ack mode.
//
//	buffer 10:   < len=3 > ack=104   < len=4 > ack=108 (3 free)   read   [> update]   < len=2: nothing yet
//	buffer 1000: < len=3 > ack=104   < len=4 > ack=108            read                < len=2 > ack=110
//
// Reference: RFC 9293 §3.8.6.3; RFC 1122 §4.2.3.2.
func TestQuickAckSmallWindow(t *testing.T) {
	for _, buf := range []int{10, 1000} {
		t.Run(fmt.Sprint(buf), func(t *testing.T) {
			srvCfg := withSwitches(t, 300, "quickack", "16")
			srvCfg.NoDelayedAck, srvCfg.RecvBuffer, srvCfg.NoWindowScale = false, buf, true
			_, srv, _, s := established(t, fixedConfig(100), srvCfg)
			send := func(seq uint32, n int) Ready {
				srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagPSH, Seq: Seq(seq), Ack: 301, Window: 1000, Payload: make([]byte, n)})
				return srv.collect()
			}
			send(101, 3)
			srv.expect(". seq=301 ack=104")
			out := send(104, 4)
			srv.expect(". seq=301 ack=108")
			if got := hasExplanation(out, CodeQuickAckSmallWindow); got != (buf == 10) {
				t.Fatalf("QUICK_ACK_SMALL_WINDOW explained: %v", got)
			}
			data := make([]byte, 100)
			if n, err := srv.e.Receive(s, data); err != nil || n != 7 {
				t.Fatalf("Receive = %d, %v", n, err)
			}
			srv.collect()
			srv.out = nil // a window update, if any
			send(108, 2)
			if srvCfg.RecvBuffer == 10 {
				srv.expectNothing()
				return
			}
			srv.expect(". seq=301 ack=110")
		})
	}
}

// TestSynRcvdSynReset: a new SYN in SYN-RECEIVED of a passive OPEN ends
// the half-open connection under both values; under synrcvd_syn_reset it
// is answered with the reset RFC 9293 §3.5.2 forms for it. The first SYN
// again still gets the SYN,ACK once more, and the peer's next SYN opens a
// fresh connection.
//
//	< S seq=150        0: (nothing)   1: > R. seq=0 ack=151
//	< S. seq=150 ack=301               1: > R seq=301
//
// Reference: RFC 9293 §3.10.7.4 (fourth), §3.5.2; RFC 793 §3.9.
func TestSynRcvdSynReset(t *testing.T) {
	tests := []struct {
		name string
		on   bool
		seg  Segment
		want string
	}{
		{"rfc", false, Segment{Flags: FlagSYN, Seq: 150}, ""},
		{"synrcvd_syn_reset", true, Segment{Flags: FlagSYN, Seq: 150}, "R. seq=0 ack=151"},
		{"synrcvd_syn_reset, with ACK", true, Segment{Flags: FlagSYN | FlagACK, Seq: 150, Ack: 301}, "R seq=301"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSide(t, "server", withSwitches(t, 300, "synrcvd_syn_reset", b2s(tt.on)))
			srv.e.Listen(serverAddr, 0)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
			srv.expect("S. seq=300 ack=101")
			tt.seg.Window = 1000
			srv.inject(clientAddr, serverAddr, tt.seg)
			code := CodeSynReturnToListen
			if tt.on {
				code = CodeSynRcvdSynReset
			}
			wantExplanation(t, srv.collect(), code)
			if tt.want != "" {
				srv.expect(tt.want)
			}
			srv.expectNothing()
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 150, Window: 1000})
			srv.expect("S. seq=300 ack=151")
		})
	}
}

// TestAcceptQLinux: listen(backlog 1), and the SYNs of the second and
// third handshakes arrive before their ACKs. Without acceptq_linux the
// second ACK finds the queue full; under it the queue holds two, the third
// ACK is the one refused, and a new SYN is then dropped without reply.
//
//	0: ack#2 dropped (ACCEPT_QUEUE_FULL)              < S (4th) > S.
//	1: ack#2 queued; ack#3 dropped (ACCEPT_QUEUE_FULL) < S (4th) dropped
//
// Reference: RFC 9293 §3.10.1, §3.10.7.4 (fifth, SYN-RECEIVED).
func TestAcceptQLinux(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(b2s(on), func(t *testing.T) {
			srv := newSide(t, "server", withSwitches(t, 300, "acceptq_linux", b2s(on)))
			l, err := srv.e.Listen(serverAddr, 1)
			if err != nil {
				t.Fatal(err)
			}
			from := func(i int) netip.AddrPort { return netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+uint16(i)) }
			syn := func(i int) Ready {
				srv.inject(from(i), serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
				return srv.collect()
			}
			ack := func(i int) bool { // whether the ACK found the queue full
				srv.inject(from(i), serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
				return hasExplanation(srv.collect(), CodeAcceptQueueFull)
			}
			for i := range 3 {
				syn(i)
				srv.expect("S. seq=300 ack=101")
			}
			want := []bool{false, !on, true} // the ACK of each handshake found the queue full
			for i, w := range want {
				if got := ack(i); got != w {
					t.Fatalf("ACK %d found the queue full: %v, want %v", i+1, got, w)
				}
			}
			out := syn(3)
			if on {
				wantExplanation(t, out, CodeAcceptQueueFullSynDropped)
				srv.expectNothing()
			} else {
				srv.expect("S. seq=300 ack=101")
			}
			queued := 1
			if on {
				queued = 2
			}
			if in, _ := srv.e.Endpoint(l); in.AcceptQueue != queued {
				t.Fatalf("accept queue %d, want %d", in.AcceptQueue, queued)
			}
		})
	}
}

// TestSynQBacklog: listen(backlog 1) and three SYNs. Without synq_backlog
// the SYN queue (SynQueue, 128) takes all three; under it, two (backlog +
// 1), and the third is dropped, or under syn_cookies answered with a
// cookie.
//
//	synq_backlog=0:                > S. > S. > S.
//	synq_backlog=1 syn_cookies=0:  > S. > S. (dropped)
//	synq_backlog=1 syn_cookies=1:  > S. > S. > S. (cookie)
//
// Reference: RFC 9293 §3.10.1; RFC 4987 §3.1, §3.6.
func TestSynQBacklog(t *testing.T) {
	tests := []struct {
		name            string
		backlog, cookie string
		code            Code // explained for the third SYN; 0: none
	}{
		{"rfc", "0", "0", 0},
		{"synq_backlog", "1", "0", CodeSynQueueFull},
		{"synq_backlog, syn_cookies", "1", "1", CodeSynCookieSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSide(t, "server", withSwitches(t, 300, "synq_backlog", tt.backlog, "syn_cookies", tt.cookie))
			if _, err := srv.e.Listen(serverAddr, 1); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				from := netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+uint16(i))
				srv.inject(from, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
				out := srv.collect()
				if i < 2 || tt.code != CodeSynQueueFull {
					if len(srv.out) != 1 || srv.out[0].Segment.Flags != FlagSYN|FlagACK {
						t.Fatalf("SYN %d: want one SYN,ACK, got %d packets", i+1, len(srv.out))
					}
					srv.out = nil
				}
				if i == 2 && tt.code != 0 {
					wantExplanation(t, out, tt.code)
				}
			}
			srv.expectNothing()
		})
	}
}
