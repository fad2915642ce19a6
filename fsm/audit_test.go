package fsm

import (
	"testing"
	"time"
)

// Audit tests: rules an independent reading of the RFCs found the engine
// breaking. Each test restates one rule and names its source.

// TestWindowUpdateNeedsAckAtLeastSndUna: the send window is updated only
// from a segment whose ACK is acceptable, SND.UNA =< SEG.ACK =< SND.NXT;
// an old ACK (below SND.UNA) must not move SND.WND, SND.WL1 or SND.WL2,
// whatever its SEG.SEQ: its window is relative to an older left edge.
// Reference: RFC 9293 §3.10.7.4 fifth step (ESTABLISHED).
func TestWindowUpdateNeedsAckAtLeastSndUna(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	mustSend(t, srv, s, string(make([]byte, 200)))
	srv.expect("P. seq=301 ack=101 len=200")
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 501, Window: 1000, Payload: []byte("ab")})
	// Newer SEG.SEQ, but SEG.ACK (401) below SND.UNA (501).
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 103, Ack: 401, Window: 9000, Payload: []byte("cd")})
	in, _ := srv.e.Endpoint(s)
	if in.SndWnd != 1000 || in.SndWl1 != 101 || in.SndWl2 != 501 {
		t.Fatalf("SND.WND %d WL1 %d WL2 %d, want 1000, 101, 501: an old ACK updated the window", in.SndWnd, in.SndWl1, in.SndWl2)
	}
	if srv.e.Readable(s) != 4 {
		t.Fatalf("readable %d, want 4: the text of an old-ACK segment is still processed", srv.e.Readable(s))
	}
}

// TestSimultaneousOpenSynAckWindowNotScaled: the window field of a segment
// with SYN set, a SYN,ACK included, is never scaled, even once both sides
// have offered window scaling; in a simultaneous open the SYN,ACK that
// completes the handshake gives SND.WND = SEG.WND as sent.
// Reference: RFC 7323 §2.2, §2.3; RFC 9293 §3.5 Figure 8.
func TestSimultaneousOpenSynAckWindowNotScaled(t *testing.T) {
	a := newSide(t, "A", fixedConfig(100))
	ca, _ := a.e.Connect(clientAddr, serverAddr)
	a.expect("S seq=100")
	ws := Options{HasWScale: true, WScale: 3}
	a.inject(serverAddr, clientAddr, Segment{Flags: FlagSYN, Seq: 300, Window: 1000, Options: ws})
	a.wantState(ca, SynReceived)
	a.expect("S. seq=100 ack=301")
	a.inject(serverAddr, clientAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 300, Ack: 101, Window: 2000, Options: ws})
	a.wantState(ca, Established)
	if in, _ := a.e.Endpoint(ca); in.SndWnd != 2000 || in.SndScale != 3 {
		t.Fatalf("SND.WND %d (scale %d), want 2000: the SYN,ACK's window was scaled", in.SndWnd, in.SndScale)
	}
}

// TestSynBeforeRcvNxtStillChallenged: in a synchronized state a segment
// with SYN set gets a challenge ACK and is dropped "irrespective of the
// sequence number"; trimming the part before RCV.NXT must not strip the
// SYN and let the rest through as data, nor may a zero window.
// Reference: RFC 5961 §4.2; RFC 9293 §3.10.7.4 fourth step.
func TestSynBeforeRcvNxtStillChallenged(t *testing.T) {
	t.Run("straddling RCV.NXT", func(t *testing.T) {
		_, srv, _, s := defaultPair(t)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 100, Ack: 301, Window: 1000, Payload: []byte("evil")})
		wantExplanation(t, srv.collect(), CodeSynChallengeAck)
		srv.expect(". seq=301 ack=101")
		srv.expectNothing()
		if n := srv.e.Readable(s); n != 0 {
			t.Fatalf("%d bytes of a SYN segment delivered", n)
		}
	})
	t.Run("zero window", func(t *testing.T) {
		cfg := fixedConfig(300)
		cfg.RecvBuffer = 100
		_, srv, _, s := established(t, fixedConfig(100), cfg)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: make([]byte, 100)})
		srv.expect(". seq=301 ack=201")
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 201, Ack: 301, Window: 1000, Payload: []byte("x")})
		wantExplanation(t, srv.collect(), CodeSynChallengeAck)
		srv.expect(". seq=301 ack=201")
		srv.wantState(s, Established)
	})
}

// TestRTOThreeSecondsAfterSynTimeout: if the timer expired awaiting the
// ACK of a SYN (ours or our SYN,ACK) and the RTO in use is under 3 s, the
// RTO MUST be re-initialized to 3 s when data transmission begins; there
// is no RTT sample to compute one from (Karn).
// Reference: RFC 6298 §5.7.
func TestRTOThreeSecondsAfterSynTimeout(t *testing.T) {
	t.Run("SYN-SENT", func(t *testing.T) {
		cli := newSide(t, "client", fixedConfig(100))
		c, _ := cli.e.Connect(clientAddr, serverAddr)
		cli.expect("S seq=100")
		cli.e.AdvanceTo(time.Second)
		cli.expect("S seq=100")
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 300, Ack: 101, Window: 1000})
		cli.wantState(c, Established)
		if in, _ := cli.e.Endpoint(c); in.RTO != 3*time.Second {
			t.Fatalf("RTO %v after a SYN timeout, want 3s", in.RTO)
		}
	})
	t.Run("SYN-RECEIVED", func(t *testing.T) {
		srv := newSide(t, "server", fixedConfig(300))
		l, _ := srv.e.Listen(serverAddr, 0)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
		srv.expect("S. seq=300 ack=101")
		srv.e.AdvanceTo(time.Second)
		srv.expect("S. seq=300 ack=101")
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
		s, err := srv.e.Accept(l)
		if err != nil {
			t.Fatal(err)
		}
		if in, _ := srv.e.Endpoint(s); in.RTO != 3*time.Second {
			t.Fatalf("RTO %v after a SYN,ACK timeout, want 3s", in.RTO)
		}
	})
	t.Run("no timeout: sample", func(t *testing.T) {
		cli := newSide(t, "client", fixedConfig(100))
		c, _ := cli.e.Connect(clientAddr, serverAddr)
		cli.expect("S seq=100")
		cli.e.AdvanceTo(100 * time.Millisecond)
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagSYN | FlagACK, Seq: 300, Ack: 101, Window: 1000})
		if in, _ := cli.e.Endpoint(c); in.RTO != time.Second {
			t.Fatalf("RTO %v from a 100 ms sample, want the 1 s minimum", in.RTO)
		}
	})
}

// TestZeroWindowProbeIsNotDuplicateAck: an ACK is a duplicate only if it
// carries no data (among other conditions); a peer's zero-window probe
// carries one byte, which our zero window refuses, and must not count
// toward fast retransmit.
// Reference: RFC 5681 §2 (DUPLICATE ACKNOWLEDGMENT, condition b), §3.2.
func TestZeroWindowProbeIsNotDuplicateAck(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.RecvBuffer = 100
	_, srv, _, s := established(t, fixedConfig(100), cfg)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535, Payload: make([]byte, 100)})
	srv.expect(". seq=301 ack=201") // window 0 now
	mustSend(t, srv, s, string(make([]byte, 50)))
	srv.expect("P. seq=301 ack=201 len=50")
	for i := 0; i < 3; i++ {
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 201, Ack: 301, Window: 65535, Payload: []byte("p")})
		r := srv.collect()
		if hasExplanation(r, CodeAckDuplicate) || hasExplanation(r, CodeFastRetransmit) {
			t.Fatalf("probe %d counted as a duplicate ACK", i+1)
		}
		srv.expect(". seq=351 ack=201")
	}
	srv.expectNothing()
}

// TestNoFastRetransmitBelowRecoverAfterTimeout: after a retransmission
// timeout, recover is set to the highest sequence number sent; three
// duplicate ACKs that do not cover more than recover (the go-back-N
// retransmissions duplicating data the receiver already had) must not
// start another fast retransmit nor cut ssthresh again. Duplicate ACKs
// beyond recover still do.
// Reference: RFC 6582 §3.2 steps 1, 2 and 4; RFC 5681 §3.2 (note on
// repeated fast retransmits).
func TestNoFastRetransmitBelowRecoverAfterTimeout(t *testing.T) {
	cfg := fixedConfig(100)
	cfg.MSS = 100
	cli, _, c, _ := established(t, cfg, fixedConfig(300))
	mustSend(t, cli, c, string(make([]byte, 500)))
	for i := 0; i < 5; i++ {
		cli.collect()
	}
	cli.out = nil
	cli.e.AdvanceTo(time.Second)
	cli.expect(". seq=101 ack=301 len=100") // the timeout's retransmission
	cli.out = nil
	before, _ := cli.e.Endpoint(c)
	for i := 0; i < 3; i++ {
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 101, Window: 65535})
		if hasExplanation(cli.collect(), CodeFastRetransmit) {
			t.Fatal("fast retransmit on duplicate ACKs that do not cover recover (601)")
		}
	}
	if in, _ := cli.e.Endpoint(c); in.Ssthresh != before.Ssthresh {
		t.Fatalf("ssthresh %d, want %d unchanged", in.Ssthresh, before.Ssthresh)
	}
	// Everything up to recover acknowledged, more data sent and lost: the
	// third duplicate ACK above recover starts fast retransmit again.
	cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 601, Window: 65535})
	cli.out = nil
	mustSend(t, cli, c, string(make([]byte, 400)))
	cli.collect()
	cli.out = nil
	cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 701, Window: 65535})
	cli.collect()
	cli.out = nil
	fr := false
	for i := 0; i < 3; i++ {
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 701, Window: 65535})
		fr = fr || hasExplanation(cli.collect(), CodeFastRetransmit)
	}
	if !fr {
		t.Fatal("no fast retransmit on the third duplicate ACK above recover")
	}
}

// TestPersistProbeExplanationNamesNextInterval: the zero-window probe's
// explanation says "next probe in {RTO.MS} ms"; the number must be the
// interval the persist timer was actually armed with, which backs off
// after each probe.
// Reference: RFC 9293 §3.8.6.1 (probes with exponential backoff).
func TestPersistProbeExplanationNamesNextInterval(t *testing.T) {
	srvCfg := fixedConfig(300)
	srvCfg.RecvBuffer = 10
	srvCfg.NoWindowScale = true
	cli, srv, c, _ := established(t, fixedConfig(100), srvCfg)
	mustSend(t, cli, c, "0123456789ABCDEF")
	relay(cli, srv, ". seq=101 ack=301 len=10")
	relay(srv, cli, ". seq=301 ack=111")
	for _, at := range []time.Duration{time.Second, 3 * time.Second} {
		cli.e.AdvanceTo(at)
		r := cli.collect()
		cli.out = nil
		var said uint64
		for _, x := range r.Explanations {
			if x.Code == CodePersistProbe {
				said, _ = x.Field("RTO.MS")
			}
		}
		next, _ := cli.e.NextDeadline()
		if got := uint64((next - at) / time.Millisecond); said != got {
			t.Fatalf("probe at %v says next probe in %d ms; the timer fires in %d ms", at, said, got)
		}
	}
}

// TestDelayedAckEverySecondFullSegmentWithTimestamps: an ACK is sent at
// once for at least every second full-sized segment. With timestamps on,
// a full-sized segment carries MSS-12 bytes of data (RFC 7323 §3.2 option
// space), so two of them must already trigger the ACK.
// Reference: RFC 5681 §4.2; RFC 9293 §3.8.6.3.
func TestDelayedAckEverySecondFullSegmentWithTimestamps(t *testing.T) {
	cliCfg, srvCfg := fixedConfig(100), fixedConfig(300)
	cliCfg.NoTimestamps, srvCfg.NoTimestamps = false, false
	srvCfg.NoDelayedAck = false
	cli, srv, c, _ := established(t, cliCfg, srvCfg)
	mustSend(t, cli, c, string(make([]byte, 2*1448)))
	relay(cli, srv, ". seq=101 ack=301 len=1448")
	srv.expectNothing()
	relay(cli, srv, "P. seq=1549 ack=301 len=1448")
	srv.expect(". seq=301 ack=2997")
}

// TestDataSegmentWithSackFitsMSS: the data a segment carries plus all of
// its TCP options must fit the send MSS, which counts data and options
// together (Eff.snd.MSS subtracts the option size). A full-sized data
// segment sent while we hold out-of-order data, and so carry SACK blocks,
// must carry correspondingly less data.
// Reference: RFC 9293 §3.7.1 (MUST-16); RFC 6691 §2; RFC 2018 §4.
func TestDataSegmentWithSackFitsMSS(t *testing.T) {
	for _, ts := range []bool{false, true} {
		cliCfg, srvCfg := fixedConfig(100), fixedConfig(300)
		cliCfg.NoTimestamps, srvCfg.NoTimestamps = !ts, !ts
		_, srv, _, s := established(t, cliCfg, srvCfg)
		in, _ := srv.e.Endpoint(s)
		if !in.SACKPermitted || in.Timestamps != ts {
			t.Fatalf("SACK %v timestamps %v", in.SACKPermitted, in.Timestamps)
		}
		// Out-of-order data from the client: our next segments carry SACK.
		// (Timestamps on: the injected segment needs one to be accepted.)
		seg := Segment{Flags: FlagACK, Seq: 111, Ack: 301, Window: 65535, Payload: make([]byte, 10)}
		if ts {
			seg.Options.HasTimestamp, seg.Options.TSVal = true, 1
		}
		srv.inject(clientAddr, serverAddr, seg)
		srv.collect()
		srv.out = nil
		mustSend(t, srv, s, string(make([]byte, 3000)))
		srv.collect()
		if len(srv.out) == 0 {
			t.Fatal("nothing sent")
		}
		for _, p := range srv.out {
			g := p.Segment
			if g.Options.NumSACK == 0 {
				t.Fatalf("timestamps %v: no SACK blocks on %s", ts, g.String())
			}
			if size := g.HeaderLen() - MinHeaderLen + len(g.Payload); size > int(in.SndMSS) {
				t.Fatalf("timestamps %v: %d bytes of options and data, over the send MSS %d: %s", ts, size, in.SndMSS, g.String())
			}
		}
	}
}

// TestChallengeAckThrottle: challenge ACKs (for an in-window RST, a SYN,
// an unacceptable ACK) are limited per connection per second of the
// engine clock; beyond the limit the segment is dropped without reply,
// and the budget returns a second later. The default (1000 per second)
// leaves ordinary exchanges unchanged.
// Reference: RFC 5961 §7.
func TestChallengeAckThrottle(t *testing.T) {
	if got := (Config{}).Defaults().ChallengeAckLimit; got != 1000 {
		t.Fatalf("default limit %d, want 1000", got)
	}
	cfg := fixedConfig(300)
	cfg.ChallengeAckLimit = 2
	_, srv, _, s := established(t, fixedConfig(100), cfg)
	triggers := []Segment{
		{Flags: FlagRST, Seq: 105},                                        // in window, not RCV.NXT
		{Flags: FlagSYN, Seq: 500, Window: 1000},                          // SYN in ESTABLISHED
		{Flags: FlagACK, Seq: 101, Ack: 900, Window: 1000},                // SEG.ACK > SND.NXT
		{Flags: FlagACK, Seq: 101, Ack: 301 + (1<<32 - 70000), Window: 1}, // below SND.UNA-MAX.SND.WND
	}
	for i, seg := range triggers {
		srv.inject(clientAddr, serverAddr, seg)
		r := srv.collect()
		if i < 2 {
			srv.expect(". seq=301 ack=101")
			continue
		}
		wantExplanation(t, r, CodeChallengeAckThrottled)
		srv.expectNothing()
	}
	srv.wantState(s, Established)
	srv.e.AdvanceTo(time.Second)
	srv.inject(clientAddr, serverAddr, triggers[0])
	srv.expect(". seq=301 ack=101")
	// An exact RST still resets: throttling never blocks it.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST, Seq: 101})
	srv.wantState(s, Closed)
}

// TestPartialAckAddsBackSMSSOnlyForFullSegment: on a partial ACK in fast
// recovery, cwnd is deflated by the amount of new data acknowledged, and
// SMSS is added back only if that amount is at least one SMSS.
// Reference: RFC 6582 §3.2 step 5 (partial acknowledgments).
func TestPartialAckAddsBackSMSSOnlyForFullSegment(t *testing.T) {
	cfg := renoConfig(fixedConfig(100))
	cfg.MSS = 100
	cli, _, c, _ := established(t, cfg, fixedConfig(300))
	mustSend(t, cli, c, string(make([]byte, 500)))
	cli.collect()
	cli.out = nil
	for i := 0; i < 3; i++ {
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 101, Window: 65535})
	}
	cli.collect()
	cli.out = nil
	if in, _ := cli.e.Endpoint(c); in.Cwnd != 550 {
		t.Fatalf("cwnd %d in recovery, want 550", in.Cwnd)
	}
	cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 151, Window: 65535}) // 50 bytes
	if in, _ := cli.e.Endpoint(c); in.Cwnd != 500 {
		t.Fatalf("cwnd %d after a 50-byte partial ACK, want 550-50 = 500", in.Cwnd)
	}
	cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 301, Window: 65535}) // 150 bytes
	if in, _ := cli.e.Endpoint(c); in.Cwnd != 450 {
		t.Fatalf("cwnd %d after a 150-byte partial ACK, want 500-150+100 = 450", in.Cwnd)
	}
}
