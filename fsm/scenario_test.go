package fsm

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// Named scenarios of RFC 9293. Each asserts every segment emitted and the
// state of both sides at each step. Client ISS is 100 and server ISS 300
// unless a test says otherwise, so sequence numbers read like the RFC's
// figures.

// inject delivers a hand-made segment from the peer address to s.
func (s *side) inject(from, to netip.AddrPort, seg Segment) {
	s.t.Helper()
	seg.SrcPort, seg.DstPort = from.Port(), to.Port()
	s.deliver(Packet{Data: AppendPacket(nil, from.Addr(), to.Addr(), &seg)})
}

// established returns a client and server with a connection set up and
// accepted: client at 101/301, server at 301/101.
func established(t *testing.T, cliCfg, srvCfg Config) (cli, srv *side, c, s EndpointID) {
	t.Helper()
	cli, srv = newSide(t, "client", cliCfg), newSide(t, "server", srvCfg)
	l, err := srv.e.Listen(serverAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err = cli.e.Connect(clientAddr, serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, "S seq=100")
	relay(srv, cli, "S. seq=300 ack=101")
	relay(cli, srv, ". seq=101 ack=301")
	s, err = srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	cli.collect()
	srv.collect()
	return cli, srv, c, s
}

func defaultPair(t *testing.T) (cli, srv *side, c, s EndpointID) {
	return established(t, fixedConfig(100), fixedConfig(300))
}

func mustSend(t *testing.T, s *side, id EndpointID, data string) {
	t.Helper()
	n, err := s.e.Send(id, []byte(data))
	if err != nil || n != len(data) {
		t.Fatalf("%s: Send = %d, %v", s.name, n, err)
	}
}

func mustRead(t *testing.T, s *side, id EndpointID, want string) {
	t.Helper()
	buf := make([]byte, len(want)+100)
	n, err := s.e.Receive(id, buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("%s: Receive = %q, %v; want %q", s.name, buf[:n], err, want)
	}
}

func hasExplanation(r Ready, code Code) bool {
	for _, x := range r.Explanations {
		if x.Code == code {
			return true
		}
	}
	return false
}

func wantExplanation(t *testing.T, r Ready, code Code) {
	t.Helper()
	if !hasExplanation(r, code) {
		var got []string
		for _, x := range r.Explanations {
			got = append(got, x.Code.String())
		}
		t.Fatalf("no %s explanation; got %v", code, got)
	}
}

// ---- Opening: RFC 9293 §3.5 ----

// TestThreeWayHandshake: the basic three-way handshake of Figure 6.
// Reference: RFC 9293 §3.5.
func TestThreeWayHandshake(t *testing.T) {
	cli, srv := newSide(t, "client", fixedConfig(100)), newSide(t, "server", fixedConfig(300))
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.wantState(l, Listen)
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	cli.wantState(c, SynSent)
	relay(cli, srv, "S seq=100")
	r := srv.collect()
	last := r.Transitions[len(r.Transitions)-1]
	if last.From != Listen || last.To != SynReceived || last.Endpoint == l {
		t.Fatalf("server transitions %+v, want a new endpoint LISTEN->SYN-RECEIVED", r.Transitions)
	}
	child := last.Endpoint
	in, _ := srv.e.Endpoint(l)
	if in.SynQueue != 1 || in.AcceptQueue != 0 {
		t.Fatalf("queues syn=%d accept=%d, want 1, 0", in.SynQueue, in.AcceptQueue)
	}
	relay(srv, cli, "S. seq=300 ack=101")
	cli.wantState(c, Established)
	relay(cli, srv, ". seq=101 ack=301")
	srv.wantState(child, Established)
	in, _ = srv.e.Endpoint(l)
	if in.SynQueue != 0 || in.AcceptQueue != 1 {
		t.Fatalf("queues syn=%d accept=%d, want 0, 1", in.SynQueue, in.AcceptQueue)
	}
	got, err := srv.e.Accept(l)
	if err != nil || got != child {
		t.Fatalf("Accept = %d, %v; want %d", got, err, child)
	}
	ci, _ := cli.e.Endpoint(c)
	if ci.ISS != 100 || ci.IRS != 300 || ci.SndNxt != 101 || ci.RcvNxt != 301 || ci.SndUna != 101 {
		t.Fatalf("client TCB %+v", ci)
	}
	cli.expectNothing()
	srv.expectNothing()
}

// TestDataOnThirdSegment: the ACK that completes the handshake may carry
// data, which is delivered. Reference: RFC 9293 §3.5, §3.10.7.4.
func TestDataOnThirdSegment(t *testing.T) {
	cli, srv := newSide(t, "client", fixedConfig(100)), newSide(t, "server", fixedConfig(300))
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 65535})
	srv.expect("S. seq=300 ack=101")
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagPSH, Seq: 101, Ack: 301, Window: 65535, Payload: []byte("GET /")})
	srv.expect(". seq=301 ack=106")
	s, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	srv.wantState(s, Established)
	mustRead(t, srv, s, "GET /")
	_ = cli
}

// TestDataOnSynQueuedUntilEstablished: text on a SYN is held and delivered
// once the handshake completes. Reference: RFC 9293 §3.10.7.2.
func TestDataOnSynQueuedUntilEstablished(t *testing.T) {
	srv := newSide(t, "server", fixedConfig(300))
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 65535, Payload: []byte("early")})
	wantExplanation(t, srv.collect(), CodeSynDataQueued)
	srv.expect("S. seq=300 ack=101")
	if srv.e.Readable(2) != 0 {
		t.Fatal("SYN data readable before ESTABLISHED")
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 106, Ack: 301, Window: 65535})
	srv.expect(". seq=301 ack=106")
	s, _ := srv.e.Accept(l)
	mustRead(t, srv, s, "early")
}

// TestSimultaneousOpen: both sides send SYN; both pass through
// SYN-RECEIVED. Reference: RFC 9293 §3.5, Figure 8.
func TestSimultaneousOpen(t *testing.T) {
	a, b := newSide(t, "A", fixedConfig(100)), newSide(t, "B", fixedConfig(300))
	ca, _ := a.e.Connect(clientAddr, serverAddr)
	cb, _ := b.e.Connect(serverAddr, clientAddr)
	synA := a.expect("S seq=100")
	synB := b.expect("S seq=300")
	a.deliver(synB)
	b.deliver(synA)
	a.wantState(ca, SynReceived)
	b.wantState(cb, SynReceived)
	sa := a.expect("S. seq=100 ack=301")
	sb := b.expect("S. seq=300 ack=101")
	a.deliver(sb)
	b.deliver(sa)
	a.wantState(ca, Established)
	b.wantState(cb, Established)
	a.expectNothing()
	b.expectNothing()
}

// TestConnectToClosedPortRefused: a SYN to a port with no listener gets
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; the RST with an acceptable
// ACK makes the opener report "connection refused".
// Reference: RFC 9293 §3.10.7.1, §3.10.7.3.
func TestConnectToClosedPortRefused(t *testing.T) {
	cli, srv := newSide(t, "client", fixedConfig(100)), newSide(t, "server", fixedConfig(300))
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	relay(cli, srv, "S seq=100")
	wantExplanation(t, srv.collect(), CodeClosedSentRst)
	relay(srv, cli, "R. seq=0 ack=101")
	cli.wantState(c, Closed)
	if _, err := cli.e.Send(c, []byte("x")); !errors.Is(err, ErrConnectionRefused) {
		t.Fatalf("Send after refusal = %v, want %v", err, ErrConnectionRefused)
	}
}

// TestHalfOpenDiscovery: A crashed and lost its connection; B still has it.
// A's new SYN gets an ACK from B; A answers with a RST whose SEQ is B's
// RCV.NXT, which B accepts; A's retransmitted SYN then opens anew.
// Reference: RFC 9293 §3.5.1, Figure 10; RFC 5961 §4.
func TestHalfOpenDiscovery(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	// A restarts with a new ISS of 400.
	a := newSide(t, "A", fixedConfig(400))
	srv.e.Listen(netip.MustParseAddrPort("10.0.0.1:81"), 0) // unrelated listener
	ca, _ := a.e.Connect(clientAddr, serverAddr)
	relay(a, srv, "S seq=400")
	wantExplanation(t, srv.collect(), CodeSynChallengeAck)
	relay(srv, a, ". seq=301 ack=101")
	relay(a, srv, "R seq=101")
	srv.wantState(s, Closed)
	if in, _ := srv.e.Endpoint(s); !errors.Is(in.Err, ErrConnectionReset) {
		t.Fatalf("server error %v, want connection reset", in.Err)
	}
	a.wantState(ca, SynSent)
}

// ---- Closing: RFC 9293 §3.6 ----

// TestFourWayCloseFromClient: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT on the
// closer; CLOSE-WAIT, LAST-ACK on the other; the ACK *number* acknowledges
// the FIN; TIME-WAIT lasts 2·MSL. Reference: RFC 9293 §3.6, Figure 12.
func TestFourWayCloseFromClient(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	cli.e.Close(c)
	cli.wantState(c, FinWait1)
	relay(cli, srv, "F. seq=101 ack=301")
	srv.wantState(s, CloseWait)
	relay(srv, cli, ". seq=301 ack=102")
	cli.wantState(c, FinWait2)
	if _, err := srv.e.Receive(s, make([]byte, 1)); !errors.Is(err, ErrConnectionClosing) {
		t.Fatalf("Receive after FIN = %v, want connection closing", err)
	}
	srv.e.Close(s)
	srv.wantState(s, LastAck)
	relay(srv, cli, "F. seq=301 ack=102")
	cli.wantState(c, TimeWait)
	relay(cli, srv, ". seq=102 ack=302")
	srv.wantState(s, Closed)
	// 2·MSL with MSL = 1 s: still TIME-WAIT just before 2 s, CLOSED at 2 s.
	cli.e.AdvanceTo(2*time.Second - time.Millisecond)
	cli.wantState(c, TimeWait)
	cli.e.AdvanceTo(2 * time.Second)
	cli.wantState(c, Closed)
}

// TestFourWayCloseFromServer mirrors the close from the passive side.
func TestFourWayCloseFromServer(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	srv.e.Close(s)
	relay(srv, cli, "F. seq=301 ack=101")
	cli.wantState(c, CloseWait)
	relay(cli, srv, ". seq=101 ack=302")
	srv.wantState(s, FinWait2)
	cli.e.Close(c)
	relay(cli, srv, "F. seq=101 ack=302")
	srv.wantState(s, TimeWait)
	relay(srv, cli, ". seq=302 ack=102")
	cli.wantState(c, Closed)
	srv.e.AdvanceTo(2 * time.Second)
	srv.wantState(s, Closed)
}

// TestSimultaneousClose: both FINs cross; both sides go through CLOSING to
// TIME-WAIT. Reference: RFC 9293 §3.6, Figure 13.
func TestSimultaneousClose(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	cli.e.Close(c)
	srv.e.Close(s)
	fc := cli.expect("F. seq=101 ack=301")
	fs := srv.expect("F. seq=301 ack=101")
	cli.deliver(fs)
	srv.deliver(fc)
	cli.wantState(c, Closing)
	srv.wantState(s, Closing)
	ac := cli.expect(". seq=102 ack=302")
	as := srv.expect(". seq=302 ack=102")
	cli.deliver(as)
	srv.deliver(ac)
	cli.wantState(c, TimeWait)
	srv.wantState(s, TimeWait)
}

// TestTimeWaitReAcksRetransmittedFin: if the last ACK is lost the peer
// resends its FIN; TIME-WAIT answers it again and restarts the 2·MSL timer.
// Reference: RFC 9293 §3.10.7.4 (TIME-WAIT), §3.6.1.
func TestTimeWaitReAcksRetransmittedFin(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	cli.e.Close(c)
	relay(cli, srv, "F. seq=101 ack=301")
	relay(srv, cli, ". seq=301 ack=102")
	srv.e.Close(s)
	fin := srv.expect("F. seq=301 ack=102")
	cli.deliver(fin)
	cli.expect(". seq=102 ack=302") // lost
	cli.e.AdvanceTo(1500 * time.Millisecond)
	srv.e.AdvanceTo(1500 * time.Millisecond) // server RTO (1 s) resends the FIN
	relay(srv, cli, "F. seq=301 ack=102")
	wantExplanation(t, cli.collect(), CodeFinTimeWaitReAck)
	relay(cli, srv, ". seq=102 ack=302")
	srv.wantState(s, Closed)
	cli.e.AdvanceTo(3 * time.Second) // 2·MSL from 1.5 s is 3.5 s
	cli.wantState(c, TimeWait)
	cli.e.AdvanceTo(3500 * time.Millisecond)
	cli.wantState(c, Closed)
}

// TestTimeWaitNewSynReopens: a SYN above RCV.NXT in TIME-WAIT ends
// TIME-WAIT and starts a new connection with a larger ISS.
// Reference: RFC 9293 §3.6.1 (MAY-2), RFC 6191.
func TestTimeWaitNewSynReopens(t *testing.T) {
	_, srv, s := serverInTimeWait(t, fixedConfig(300))
	// An old duplicate SYN (below RCV.NXT) gets the ACK and is dropped.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 50, Window: 1000})
	srv.expect(". seq=302 ack=102")
	srv.wantState(s, TimeWait)
	// A newer SYN reopens.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 5000, Window: 1000})
	r := srv.collect()
	wantExplanation(t, r, CodeTimeWaitReopened)
	srv.wantState(s, Closed)
	p := srv.out[0]
	if p.Segment.Flags != FlagSYN|FlagACK || p.Segment.Ack != 5001 || !p.Segment.Seq.GreaterThan(302) {
		t.Fatalf("reply %s, want SYN,ACK with ack 5001 and ISS above 302", segSummary(&p.Segment))
	}
}

// serverInTimeWait closes an established pair from the server first, so
// the server ends in TIME-WAIT at 302/102.
func serverInTimeWait(t *testing.T, srvCfg Config) (cli, srv *side, s EndpointID) {
	t.Helper()
	cli, srv, c, s := established(t, fixedConfig(100), srvCfg)
	srv.e.Close(s)
	relay(srv, cli, "F. seq=301 ack=101")
	relay(cli, srv, ". seq=101 ack=302")
	cli.e.Close(c)
	relay(cli, srv, "F. seq=101 ack=302")
	relay(srv, cli, ". seq=302 ack=102")
	srv.wantState(s, TimeWait)
	return cli, srv, s
}

// ---- Resets: RFC 9293 §3.5.2, §3.10.7.4; RFC 5961 ----

// TestRstInSynchronizedStates: a RST whose SEQ equals RCV.NXT closes the
// connection in every synchronized state; the error the application sees
// depends on the state. Reference: RFC 9293 §3.10.7.4 second check.
func TestRstInSynchronizedStates(t *testing.T) {
	type setup func(t *testing.T) (srv *side, s EndpointID, rcvNxt Seq)
	est := func(t *testing.T) (*side, EndpointID, Seq) { _, srv, _, s := defaultPair(t); return srv, s, 101 }
	tests := []struct {
		name    string
		setup   setup
		state   State
		wantErr error
	}{
		{"SYN-RECEIVED", func(t *testing.T) (*side, EndpointID, Seq) {
			srv := newSide(t, "server", fixedConfig(300))
			srv.e.Listen(serverAddr, 0)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
			srv.collect()
			return srv, 2, 101
		}, SynReceived, ErrConnectionReset},
		{"ESTABLISHED", est, Established, ErrConnectionReset},
		{"FIN-WAIT-1", func(t *testing.T) (*side, EndpointID, Seq) {
			_, srv, _, s := defaultPair(t)
			srv.e.Shutdown(s)
			srv.collect()
			return srv, s, 101
		}, FinWait1, ErrConnectionReset},
		{"FIN-WAIT-2", func(t *testing.T) (*side, EndpointID, Seq) {
			cli, srv, _, s := defaultPair(t)
			srv.e.Shutdown(s)
			relay(srv, cli, "F. seq=301 ack=101")
			relay(cli, srv, ". seq=101 ack=302")
			return srv, s, 101
		}, FinWait2, ErrConnectionReset},
		{"CLOSE-WAIT", func(t *testing.T) (*side, EndpointID, Seq) {
			cli, srv, c, s := defaultPair(t)
			cli.e.Close(c)
			relay(cli, srv, "F. seq=101 ack=301")
			srv.collect()
			return srv, s, 102
		}, CloseWait, ErrConnectionReset},
		{"CLOSING", func(t *testing.T) (*side, EndpointID, Seq) {
			cli, srv, c, s := defaultPair(t)
			cli.e.Close(c)
			srv.e.Close(s)
			srv.deliver(cli.expect("F. seq=101 ack=301"))
			srv.collect()
			return srv, s, 102
		}, Closing, nil},
		{"LAST-ACK", func(t *testing.T) (*side, EndpointID, Seq) {
			cli, srv, c, s := defaultPair(t)
			cli.e.Close(c)
			relay(cli, srv, "F. seq=101 ack=301")
			srv.collect()
			srv.e.Close(s)
			srv.collect()
			return srv, s, 102
		}, LastAck, nil},
		{"TIME-WAIT", func(t *testing.T) (*side, EndpointID, Seq) {
			cli, srv, c, s := defaultPair(t)
			srv.e.Close(s)
			relay(srv, cli, "F. seq=301 ack=101")
			relay(cli, srv, ". seq=101 ack=302")
			cli.e.Close(c)
			relay(cli, srv, "F. seq=101 ack=302")
			srv.collect()
			return srv, s, 102
		}, TimeWait, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s, rcvNxt := tt.setup(t)
			srv.wantState(s, tt.state)
			srv.out = nil
			// An in-window RST that is not exactly RCV.NXT: challenge ACK.
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST, Seq: rcvNxt + 10})
			r := srv.collect()
			wantExplanation(t, r, CodeRstChallengeAck)
			if len(srv.out) != 1 || srv.out[0].Segment.Flags != FlagACK {
				t.Fatalf("want one challenge ACK, got %d packets", len(srv.out))
			}
			srv.wantState(s, tt.state)
			// Outside the window: dropped silently.
			srv.out = nil
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST, Seq: rcvNxt + 1000000})
			srv.expectNothing()
			srv.wantState(s, tt.state)
			// Exactly RCV.NXT: closed.
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST, Seq: rcvNxt})
			srv.expectNothing()
			srv.wantState(s, Closed)
			in, _ := srv.e.Endpoint(s)
			if !errors.Is(in.Err, tt.wantErr) {
				t.Fatalf("error %v, want %v", in.Err, tt.wantErr)
			}
		})
	}
}

// TestSynInSynchronizedStateChallengeAck: a SYN on an established
// connection is answered with a challenge ACK and changes nothing.
// Reference: RFC 5961 §4.2, RFC 9293 §3.10.7.4 fourth check.
func TestSynInSynchronizedStateChallengeAck(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 105, Window: 1000})
	wantExplanation(t, srv.collect(), CodeSynChallengeAck)
	srv.expect(". seq=301 ack=101")
	srv.wantState(s, Established)
}

// TestUnacceptableSegmentGetsAck: the first check answers a segment outside
// the window with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and drops it.
// Reference: RFC 9293 §3.10.7.4 first check.
func TestUnacceptableSegmentGetsAck(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 5000000, Ack: 301, Window: 1000, Payload: []byte("x")})
	r := srv.collect()
	wantExplanation(t, r, CodeUnacceptableSentAck)
	srv.expect(". seq=301 ack=101")
	if srv.e.Readable(s) != 0 {
		t.Fatal("out-of-window data was accepted")
	}
	var x Explanation
	for _, e := range r.Explanations {
		if e.Code == CodeUnacceptableSentAck {
			x = e
		}
	}
	if v, _ := x.Field("SEG.SEQ"); v != 5000000 {
		t.Fatalf("explanation fields %+v", x)
	}
	if x.Section() != "RFC 9293 §3.10.7.4" || x.Text() == "" {
		t.Fatalf("explanation %s", x.String())
	}
}

// TestAckOfUnsentDataGetsAck: SEG.ACK > SND.NXT is answered with an ACK and
// dropped. Reference: RFC 9293 §3.10.7.4 fifth check (ESTABLISHED).
func TestAckOfUnsentDataGetsAck(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 999, Window: 1000, Payload: []byte("zz")})
	wantExplanation(t, srv.collect(), CodeAckTooHighSentAck)
	srv.expect(". seq=301 ack=101")
	if srv.e.Readable(s) != 0 {
		t.Fatal("data of a dropped segment was accepted")
	}
}

// TestBadChecksumDropped: a corrupted segment is dropped and explained.
// Reference: RFC 9293 §3.1 (MUST-3).
func TestBadChecksumDropped(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	seg := Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("data"), SrcPort: 40000, DstPort: 80}
	pkt := AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &seg)
	pkt[len(pkt)-1] ^= 0xff
	if err := srv.e.Deliver(pkt); err != nil {
		t.Fatal(err)
	}
	wantExplanation(t, srv.collect(), CodeBadChecksum)
	srv.expectNothing()
	if srv.e.Readable(s) != 0 {
		t.Fatal("corrupted data accepted")
	}
}

// ---- Data transfer ----

// TestOutOfOrderReassembly: a segment beyond RCV.NXT is held and
// duplicate-ACKed at once; when the hole fills, both are delivered and
// acknowledged. Reference: RFC 9293 §3.10.7.4 seventh; RFC 5681 §4.2.
func TestOutOfOrderReassembly(t *testing.T) {
	_, srv, _, s := defaultPair(t)
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 106, Ack: 301, Window: 1000, Payload: []byte("world")})
	wantExplanation(t, srv.collect(), CodeDataOutOfOrder)
	srv.expect(". seq=301 ack=101")
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("hello")})
	srv.expect(". seq=301 ack=111")
	mustRead(t, srv, s, "helloworld")
	// A duplicate is trimmed away and re-acknowledged.
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("hello")})
	srv.expect(". seq=301 ack=111")
	if srv.e.Readable(s) != 0 {
		t.Fatal("duplicate delivered twice")
	}
}

// TestISNNearWrap: sequence numbers wrap modulo 2^32 through the handshake,
// data and close. Reference: RFC 9293 §3.4.
func TestISNNearWrap(t *testing.T) {
	cli, srv := newSide(t, "client", fixedConfig(0xfffffffe)), newSide(t, "server", fixedConfig(0xffffffff))
	l, _ := srv.e.Listen(serverAddr, 0)
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	relay(cli, srv, "S seq=4294967294")
	relay(srv, cli, "S. seq=4294967295 ack=4294967295")
	relay(cli, srv, ". seq=4294967295 ack=0")
	s, _ := srv.e.Accept(l)
	mustSend(t, cli, c, "abcdef")
	relay(cli, srv, "P. seq=4294967295 ack=0 len=6")
	relay(srv, cli, ". seq=0 ack=5")
	mustRead(t, srv, s, "abcdef")
	cli.e.Close(c)
	srv.e.Close(s)
	pump(cli, srv)
	cli.wantState(c, TimeWait)
	srv.wantState(s, TimeWait)
}

// TestRetransmissionAndGiveUp: unacknowledged data is resent with the RTO
// doubling each time (RFC 6298 §5.5); after MaxRetries the connection is
// aborted with "timed out". Reference: RFC 6298 §5, RFC 9293 §3.8.3.
func TestRetransmissionAndGiveUp(t *testing.T) {
	cfg := fixedConfig(100)
	cfg.MaxRetries = 3
	cli, _, c, _ := established(t, cfg, fixedConfig(300))
	mustSend(t, cli, c, "lost")
	cli.expect("P. seq=101 ack=301 len=4")
	at := time.Duration(0)
	for i, rto := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		at += rto
		cli.e.AdvanceTo(at - time.Millisecond)
		cli.expectNothing()
		cli.e.AdvanceTo(at)
		r := cli.collect()
		wantExplanation(t, r, CodeRetransmitTimeout)
		cli.expect("P. seq=101 ack=301 len=4")
		if in, _ := cli.e.Endpoint(c); in.RTO != rto*2 {
			t.Fatalf("retry %d: RTO %v, want %v", i+1, in.RTO, rto*2)
		}
	}
	cli.e.AdvanceTo(at + 8*time.Second)
	r := cli.collect()
	wantExplanation(t, r, CodeGiveUp)
	cli.wantState(c, Closed)
	if _, err := cli.e.Send(c, []byte("x")); !errors.Is(err, ErrTimedOut) {
		t.Fatalf("Send = %v, want timed out", err)
	}
}

// TestSynRetransmitAndGiveUp: an unanswered SYN is resent SynRetries times.
func TestSynRetransmitAndGiveUp(t *testing.T) {
	cfg := fixedConfig(100)
	cfg.SynRetries = 2
	cli := newSide(t, "client", cfg)
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	cli.expect("S seq=100")
	cli.e.AdvanceTo(time.Second)
	cli.expect("S seq=100")
	cli.e.AdvanceTo(3 * time.Second)
	cli.expect("S seq=100")
	cli.e.AdvanceTo(7 * time.Second)
	cli.wantState(c, Closed)
	in, _ := cli.e.Endpoint(c)
	if !errors.Is(in.Err, ErrTimedOut) {
		t.Fatalf("error %v", in.Err)
	}
}

// TestZeroWindowProbe: when the peer's window is zero the sender probes
// with one byte after an RTO, backing off, until the window reopens.
// Reference: RFC 9293 §3.8.6.1.
func TestZeroWindowProbe(t *testing.T) {
	srvCfg := fixedConfig(300)
	srvCfg.RecvBuffer = 10
	srvCfg.NoWindowScale = true
	cli, srv, c, s := established(t, fixedConfig(100), srvCfg)
	mustSend(t, cli, c, "0123456789ABCDEF")
	relay(cli, srv, ". seq=101 ack=301 len=10") // window-limited: not the end of the write, no PSH
	ack := relay(srv, cli, ". seq=301 ack=111")
	if ack.Segment.Window != 0 {
		t.Fatalf("window %d, want 0", ack.Segment.Window)
	}
	cli.expectNothing()
	cli.e.AdvanceTo(time.Second)
	wantExplanation(t, cli.collect(), CodePersistProbe)
	relay(cli, srv, ". seq=111 ack=301 len=1")
	wantExplanation(t, srv.collect(), CodeZeroWindowTextDropped)
	relay(srv, cli, ". seq=301 ack=111")
	cli.e.AdvanceTo(3 * time.Second) // backed off to 2 s
	relay(cli, srv, ". seq=111 ack=301 len=1")
	relay(srv, cli, ". seq=301 ack=111")
	// The application reads; the window update lets the rest through.
	mustRead(t, srv, s, "0123456789")
	wu := relay(srv, cli, ". seq=301 ack=111")
	if wu.Segment.Window != 10 {
		t.Fatalf("window update %d, want 10", wu.Segment.Window)
	}
	relay(cli, srv, "P. seq=111 ack=301 len=6")
	relay(srv, cli, ". seq=301 ack=117")
	mustRead(t, srv, s, "ABCDEF")
}

// ---- Listener queues ----

// TestSynQueueOverflowDrops: with the SYN queue full and cookies off, SYNs
// are dropped and counted. Reference: RFC 4987 §3.1.
func TestSynQueueOverflowDrops(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.SynQueue = 2
	srv := newSide(t, "server", cfg)
	l, _ := srv.e.Listen(serverAddr, 0)
	for i := 0; i < 3; i++ {
		from := netip.AddrPortFrom(clientAddr.Addr(), uint16(40000+i))
		srv.inject(from, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
	}
	r := srv.collect()
	wantExplanation(t, r, CodeSynQueueFull)
	if len(srv.out) != 2 {
		t.Fatalf("%d SYN,ACKs, want 2", len(srv.out))
	}
	in, _ := srv.e.Endpoint(l)
	if in.SynQueue != 2 || in.Stats.SynQueueDrops != 1 {
		t.Fatalf("syn queue %d drops %d", in.SynQueue, in.Stats.SynQueueDrops)
	}
}

// TestSynCookiesWhenQueueFull: with cookies on, the overflow SYN gets a
// stateless SYN,ACK and the returning ACK builds the connection.
// Reference: RFC 4987 §3.6.
func TestSynCookiesWhenQueueFull(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.SynQueue = 1
	cfg.SynCookies = true
	srv := newSide(t, "server", cfg)
	l, _ := srv.e.Listen(serverAddr, 0)
	srv.inject(netip.MustParseAddrPort("10.0.0.9:1"), serverAddr, Segment{Flags: FlagSYN, Seq: 7, Window: 1000})
	srv.collect()
	srv.out = nil
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000, Options: Options{MSS: 1400, HasMSS: true}})
	wantExplanation(t, srv.collect(), CodeSynCookieSent)
	synack := srv.out[0].Segment
	srv.out = nil
	if in, _ := srv.e.Endpoint(l); in.SynQueue != 1 {
		t.Fatalf("cookie SYN took queue space: %d", in.SynQueue)
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: synack.Seq + 1, Window: 1000, Payload: []byte("hi")})
	wantExplanation(t, srv.collect(), CodeSynCookieAccepted)
	s, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	srv.wantState(s, Established)
	mustRead(t, srv, s, "hi")
	if in, _ := srv.e.Endpoint(s); in.SndMSS != 1400 {
		t.Fatalf("MSS from cookie %d, want 1400", in.SndMSS)
	}
	// A forged ACK gets a RST.
	srv.out = nil
	srv.inject(netip.MustParseAddrPort("10.0.0.7:7"), serverAddr, Segment{Flags: FlagACK, Seq: 1, Ack: 12345, Window: 1000})
	srv.expect("R seq=12345")
}

// TestAcceptQueueOverflow: with the accept queue full, the ACK completing a
// handshake is dropped and the connection stays in SYN-RECEIVED; once the
// application accepts, the retransmitted SYN,ACK completes it.
func TestAcceptQueueOverflow(t *testing.T) {
	srv := newSide(t, "server", fixedConfig(300))
	l, _ := srv.e.Listen(serverAddr, 1)
	open := func(port uint16) netip.AddrPort {
		from := netip.AddrPortFrom(clientAddr.Addr(), port)
		srv.inject(from, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
		srv.expect("S. seq=300 ack=101")
		srv.inject(from, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
		return from
	}
	open(1)
	second := open(2)
	wantExplanation(t, srv.collect(), CodeAcceptQueueFull)
	in, _ := srv.e.Endpoint(l)
	if in.AcceptQueue != 1 || in.SynQueue != 1 || in.Stats.AcceptQueueDrops != 1 {
		t.Fatalf("accept %d syn %d drops %d", in.AcceptQueue, in.SynQueue, in.Stats.AcceptQueueDrops)
	}
	srv.e.Accept(l)
	srv.e.AdvanceTo(time.Second)
	srv.expect("S. seq=300 ack=101")
	srv.inject(second, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
	if _, err := srv.e.Accept(l); err != nil {
		t.Fatalf("second accept: %v", err)
	}
}

// ---- Options ----

// TestOptionNegotiation: MSS, window scale, SACK-permitted and timestamps
// are each on only when both SYNs carry them. Reference: RFC 9293 §3.7.1,
// RFC 7323 §2.2 and §3.2, RFC 2018 §2.
func TestOptionNegotiation(t *testing.T) {
	cfg, srvCfg := fixedConfig(100), fixedConfig(300)
	cfg.RecvBuffer = 1 << 20
	cfg.NoTimestamps, srvCfg.NoTimestamps = false, false
	cli, srv, c, s := established(t, cfg, srvCfg)
	ci, _ := cli.e.Endpoint(c)
	si, _ := srv.e.Endpoint(s)
	if !ci.WindowScale || ci.RcvScale != 5 || si.SndScale != 5 || !ci.Timestamps || !si.SACKPermitted {
		t.Fatalf("client %+v\nserver %+v", ci, si)
	}
	// A peer offering nothing: defaults (MSS 536, no options).
	srv2 := newSide(t, "server", fixedConfig(300))
	l, _ := srv2.e.Listen(serverAddr, 0)
	srv2.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
	sa := srv2.expect("S. seq=300 ack=101")
	if o := sa.Segment.Options; o.HasWScale || o.HasTimestamp || o.SACKPermitted || !o.HasMSS {
		t.Fatalf("SYN,ACK options %+v: only MSS may be sent to a peer that offered none", o)
	}
	srv2.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
	s2, _ := srv2.e.Accept(l)
	if in, _ := srv2.e.Endpoint(s2); in.SndMSS != 536 || in.WindowScale || in.Timestamps {
		t.Fatalf("server %+v", in)
	}
}

// TestPAWSRejectsOldTimestamp: with timestamps on, a segment whose TSval is
// older than TS.Recent is an old duplicate: ACKed and dropped.
// Reference: RFC 7323 §5.3.
func TestPAWSRejectsOldTimestamp(t *testing.T) {
	cfg := fixedConfig(300)
	cfg.NoTimestamps = false
	srv := newSide(t, "server", cfg)
	l, _ := srv.e.Listen(serverAddr, 0)
	ts := func(val uint32) Options { return Options{HasTimestamp: true, TSVal: val} }
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000, Options: ts(1000)})
	srv.collect()
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Options: ts(1001)})
	s, _ := srv.e.Accept(l)
	srv.out = nil
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Options: ts(900), Payload: []byte("old")})
	wantExplanation(t, srv.collect(), CodePAWSRejected)
	if srv.e.Readable(s) != 0 {
		t.Fatal("PAWS let an old segment through")
	}
	srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("no-ts")})
	wantExplanation(t, srv.collect(), CodeNoTimestampDropped)
}

// ---- Application calls: RFC 9293 §3.10.1–§3.10.6 ----

// TestAppCallErrors checks the responses the RFC prescribes for calls in
// states where they do not apply.
func TestAppCallErrors(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	if _, err := cli.e.Connect(clientAddr, serverAddr); !errors.Is(err, ErrConnectionExists) {
		t.Errorf("second OPEN: %v, want connection already exists", err)
	}
	if _, err := srv.e.Listen(serverAddr, 0); !errors.Is(err, ErrConnectionExists) {
		t.Errorf("second LISTEN: %v, want connection already exists", err)
	}
	if _, err := cli.e.Send(999, []byte("x")); !errors.Is(err, ErrConnectionDoesNotExist) {
		t.Errorf("SEND on unknown: %v", err)
	}
	cli.e.Shutdown(c)
	if _, err := cli.e.Send(c, []byte("x")); !errors.Is(err, ErrConnectionClosing) {
		t.Errorf("SEND after CLOSE: %v, want connection closing", err)
	}
	if err := cli.e.Shutdown(c); !errors.Is(err, ErrConnectionClosing) {
		t.Errorf("second CLOSE: %v, want connection closing", err)
	}
	if _, err := srv.e.Accept(s); !errors.Is(err, ErrNotListener) {
		t.Errorf("ACCEPT on a connection: %v", err)
	}
	if err := srv.e.Abort(s); err != nil {
		t.Fatal(err)
	}
	srv.expect("R seq=301")
	if err := srv.e.Abort(s); !errors.Is(err, ErrConnectionDoesNotExist) {
		t.Errorf("ABORT on CLOSED: %v", err)
	}
}

// TestCloseWithUnreadDataResets: closing with unread data sends a RST
// instead of a FIN, so the peer learns the data was not consumed.
// Reference: RFC 2525 §2.17.
func TestCloseWithUnreadDataResets(t *testing.T) {
	cli, srv, c, s := defaultPair(t)
	mustSend(t, cli, c, "unread")
	relay(cli, srv, "P. seq=101 ack=301 len=6")
	srv.collect()
	srv.out = nil
	srv.e.Close(s)
	srv.expect("R seq=301")
	srv.wantState(s, Closed)
}
