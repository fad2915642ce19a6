package fsm

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestAppendixB checks the requirements of RFC 9293 Appendix B that no
// other test shows on its own. Each case is named by its requirement, its
// comment restates it and gives the section; docs/CONFORMANCE.md ("RFC
// 9293 Appendix B: every requirement") maps every requirement to a test,
// and TestAppendixBTableHonest keeps that table in step with this one.
func TestAppendixB(t *testing.T) {
	for _, tt := range appendixBCases {
		t.Run(tt.id, tt.run)
	}
}

var appendixBCases = []struct {
	id  string
	run func(t *testing.T)
}{
	// MUST-1 (§3.1): SEG.WND is unsigned. A window with the top bit set
	// (0x8001, negative as an int16) is 32769 bytes of send window.
	//
	//	< . seq=301 ack=101 win=32769     (no window scaling)
	//	SND.WND = 32769
	{"MUST-1", func(t *testing.T) {
		cfg := fixedConfig(100)
		cfg.NoWindowScale = true
		cli, _, c, _ := established(t, cfg, fixedConfig(300))
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 101, Window: 0x8001})
		if in, _ := cli.e.Endpoint(c); in.SndWnd != 32769 {
			t.Fatalf("SND.WND %d, want 32769", in.SndWnd)
		}
	}},

	// MUST-5, MUST-6 (§3.1): an option may come on any segment, and one the
	// engine does not know (kind 30, with a length) is skipped without error.
	//
	//	< P. seq=101 ack=301 <nop,nop,kind 30 len 4> "hi"
	//	> .  seq=301 ack=103
	{"MUST-5", func(t *testing.T) {
		_, srv, _, s := defaultPair(t)
		srv.rawOptions(clientAddr, serverAddr, Segment{Flags: FlagPSH | FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("hi")},
			[]byte{optNOP, optNOP, 30, 4, 0xab, 0xcd})
		srv.expect(". seq=301 ack=103")
		mustRead(t, srv, s, "hi")
	}},

	// MUST-7 (§3.1): an illegal option length (zero here) is handled: the
	// segment is refused as malformed, nothing changes and nothing is sent.
	{"MUST-7", func(t *testing.T) {
		_, srv, _, s := defaultPair(t)
		err := srv.rawOptionsErr(clientAddr, serverAddr, Segment{Flags: FlagPSH | FlagACK, Seq: 101, Ack: 301, Window: 1000, Payload: []byte("hi")},
			[]byte{30, 0, optNOP, optNOP})
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Deliver = %v, want a *ParseError", err)
		}
		srv.expectNothing()
		srv.wantState(s, Established)
		if n := srv.e.Readable(s); n != 0 {
			t.Fatalf("%d bytes readable from a malformed segment", n)
		}
	}},

	// MUST-12 (§3.6): the application learns whether the peer closed
	// normally (FIN: end of file, "connection closing") or aborted (RST:
	// "connection reset").
	{"MUST-12", func(t *testing.T) {
		t.Run("FIN", func(t *testing.T) {
			_, srv, _, s := defaultPair(t)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagFIN | FlagACK, Seq: 101, Ack: 301, Window: 1000})
			wantEvent(t, srv.collect(), EventPeerClosed)
			if _, err := srv.e.Receive(s, make([]byte, 10)); !errors.Is(err, ErrConnectionClosing) {
				t.Fatalf("Receive after FIN: %v, want %v", err, ErrConnectionClosing)
			}
		})
		t.Run("RST", func(t *testing.T) {
			_, srv, _, s := defaultPair(t)
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST, Seq: 101})
			wantEvent(t, srv.collect(), EventReset)
			if _, err := srv.e.Receive(s, make([]byte, 10)); !errors.Is(err, ErrConnectionReset) {
				t.Fatalf("Receive after RST: %v, want %v", err, ErrConnectionReset)
			}
		})
	}},

	// MUST-15 (§3.7.1): without an MSS option from the peer, the send MSS
	// is 536 for IPv4 and 1220 for IPv6.
	//
	//	< S. seq=300 ack=101 win=65535    (no options)
	//	> .  seq=101 ack=301 len=536      (IPv4) / len=1220 (IPv6)
	{"MUST-15", func(t *testing.T) {
		for _, tc := range []struct {
			local, remote netip.AddrPort
			mss           string
		}{
			{clientAddr, serverAddr, "len=536"},
			{netip.MustParseAddrPort("[2001:db8::2]:40000"), netip.MustParseAddrPort("[2001:db8::1]:80"), "len=1220"},
		} {
			cli := newSide(t, "client", fixedConfig(100))
			c, _ := cli.e.Connect(tc.local, tc.remote)
			cli.expect("S seq=100")
			cli.inject(tc.remote, tc.local, Segment{Flags: FlagSYN | FlagACK, Seq: 300, Ack: 101, Window: 65535})
			cli.expect(". seq=101 ack=301")
			mustSend(t, cli, c, string(make([]byte, 3000)))
			cli.expect(". seq=101 ack=301 " + tc.mss)
		}
	}},

	// MUST-17 (§3.7.4): an application can turn Nagle off on one
	// connection (TCP_NODELAY) while the engine's default keeps it on.
	//
	//	write "a"   > P. seq=101 ack=301 len=1
	//	write "b"   > P. seq=102 ack=301 len=1    (Nagle would hold it)
	{"MUST-17", func(t *testing.T) {
		cli, _, c, _ := defaultPair(t)
		if err := cli.e.SetSockOpts(c, SockOpts{NoDelay: true}); err != nil {
			t.Fatal(err)
		}
		mustSend(t, cli, c, "a")
		cli.expect("P. seq=101 ack=301 len=1")
		mustSend(t, cli, c, "b")
		cli.expect("P. seq=102 ack=301 len=1")
		if o, _ := cli.e.SockOpts(c); !o.NoDelay {
			t.Fatalf("SockOpts %+v, want NoDelay", o)
		}
	}},

	// MUST-18 (§3.8.1): the RTO follows RFC 6298: the first sample R sets
	// SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR rounded up to 1 s
	// (§2.2, §2.4); and by Karn's algorithm an ACK for retransmitted data
	// gives no sample (§3). (The handshake's zero-time exchange gives no
	// estimate to start from.)
	//
	//	0 ms     > P. seq=101 len=1
	//	100 ms   < .  ack=102              SRTT 100 ms, RTTVAR 50 ms, RTO 1 s
	//	100 ms   > P. seq=102 len=1
	//	1100 ms  > P. seq=102 len=1        the RTO fires: resent
	//	1500 ms  < .  ack=103              no sample: SRTT stays 100 ms
	{"MUST-18", func(t *testing.T) {
		cli, _, c, _ := defaultPair(t)
		mustSend(t, cli, c, "x")
		cli.expect("P. seq=101 ack=301 len=1")
		cli.e.AdvanceTo(100 * time.Millisecond)
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 102, Window: 65535})
		in, _ := cli.e.Endpoint(c)
		if in.SRTT != 100*time.Millisecond || in.RTTVar != 50*time.Millisecond || in.RTO != time.Second {
			t.Fatalf("SRTT %v RTTVAR %v RTO %v, want 100ms 50ms 1s", in.SRTT, in.RTTVar, in.RTO)
		}
		mustSend(t, cli, c, "y")
		cli.expect("P. seq=102 ack=301 len=1")
		cli.e.AdvanceTo(1100 * time.Millisecond)
		cli.expect("P. seq=102 ack=301 len=1")
		cli.e.AdvanceTo(1500 * time.Millisecond)
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 103, Window: 65535})
		if in, _ := cli.e.Endpoint(c); in.SRTT != 100*time.Millisecond {
			t.Fatalf("SRTT %v after an ACK of retransmitted data, want 100ms (Karn)", in.SRTT)
		}
	}},

	// MUST-19 (§3.8.2): slow start: each ACK of new data below ssthresh
	// grows cwnd by the bytes acknowledged, up to one SMSS (RFC 5681 §3.1);
	// the collapse and backoff on timeout are in TestRetransmissionAndGiveUp.
	{"MUST-19", func(t *testing.T) {
		cli, _, c, _ := defaultPair(t)
		before, _ := cli.e.Endpoint(c)
		mustSend(t, cli, c, string(make([]byte, 1460)))
		cli.expect("P. seq=101 ack=301 len=1460")
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 1561, Window: 65535})
		after, _ := cli.e.Endpoint(c)
		if after.Cwnd != before.Cwnd+1460 {
			t.Fatalf("cwnd %d -> %d, want +1460 in slow start", before.Cwnd, after.Cwnd)
		}
	}},

	// MUST-21 (§3.8.3): an application sets R2 for one connection. With
	// two retransmissions allowed, the third timeout aborts it, and the
	// application is told (EventTimedOut, MUST-47).
	{"MUST-21", func(t *testing.T) {
		cli, _, c, _ := defaultPair(t)
		if err := cli.e.SetSockOpts(c, SockOpts{MaxRetries: 2}); err != nil {
			t.Fatal(err)
		}
		mustSend(t, cli, c, "x")
		cli.expect("P. seq=101 ack=301 len=1")
		retx, timedOut := giveUp(t, cli, c, "P. seq=101 ack=301 len=1")
		if retx != 2 || !timedOut {
			t.Fatalf("%d retransmissions, timed-out event %v; want 2 and the event (MUST-47)", retx, timedOut)
		}
	}},

	// SHLD-2 (§3.5.3): a RST may carry data (a diagnostic, say); it resets
	// the connection like any other.
	{"SHLD-2", func(t *testing.T) {
		_, srv, _, s := defaultPair(t)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST | FlagACK, Seq: 101, Ack: 301, Payload: []byte("going away")})
		wantEvent(t, srv.collect(), EventReset)
		srv.expectNothing()
		srv.wantState(s, Closed)
	}},

	// SHLD-11 (§3.8.3): R2 for data is at least 100 s by default: with
	// Config.MaxRetries 15 and the RTO doubling to its 60 s cap, the
	// connection gives up only after many minutes.
	{"SHLD-11", func(t *testing.T) {
		cli, _, c, _ := defaultPair(t)
		mustSend(t, cli, c, "x")
		cli.expect("P. seq=101 ack=301 len=1")
		retx, _ := giveUp(t, cli, c, "P. seq=101 ack=301 len=1")
		if now := cli.e.Now(); now < 100*time.Second || retx != 15 {
			t.Fatalf("gave up after %d retransmissions at %v, want 15 and at least 100s", retx, now)
		}
	}},

	// MUST-34 (§3.8.6): the sender copes with a window that shrinks under
	// data already sent (usable window negative): no new data goes out,
	// the data in flight is retransmitted from SND.UNA on timeout, and the
	// transfer completes when the window opens again.
	//
	//	> .  seq=101 ack=301 len=1460
	//	> .  seq=1561 ack=301 len=1460
	//	< .  seq=301 ack=1561 win=100      right edge 1661, left of SND.NXT 3021
	//	write "more"                       (nothing sent)
	//	+1s > . seq=1561 ack=301 ...       retransmission from SND.UNA
	{"MUST-34", func(t *testing.T) {
		cfg := fixedConfig(100)
		cfg.NoWindowScale = true
		cli, _, c, _ := established(t, cfg, fixedConfig(300))
		mustSend(t, cli, c, string(make([]byte, 2920)))
		cli.expect(". seq=101 ack=301 len=1460")
		cli.expect("P. seq=1561 ack=301 len=1460")
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 1561, Window: 100})
		mustSend(t, cli, c, "more")
		cli.expectNothing()
		cli.wantState(c, Established)
		cli.e.AdvanceTo(time.Second)
		cli.collect()
		if len(cli.out) == 0 || cli.out[0].Segment.Seq != 1561 {
			t.Fatalf("after the RTO: %d segments, want a retransmission from 1561", len(cli.out))
		}
		cli.out = nil
		cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 3021, Window: 65535})
		cli.expect("P. seq=3021 ack=301 len=4")
	}},

	// MUST-37 (§3.8.6.1): while the peer keeps answering the probes of its
	// zero window, the connection stays open, for an hour here and
	// indefinitely in general; the probes back off to the RTO maximum.
	{"MUST-37", func(t *testing.T) {
		srvCfg := fixedConfig(300)
		srvCfg.RecvBuffer, srvCfg.NoWindowScale = 10, true
		cli, srv, c, s := established(t, fixedConfig(100), srvCfg)
		mustSend(t, cli, c, "0123456789ABCDEF")
		relay(cli, srv, ". seq=101 ack=301 len=10")
		relay(srv, cli, ". seq=301 ack=111")
		probes := 0
		for cli.e.Now() < time.Hour {
			d, ok := cli.e.NextDeadline()
			if !ok {
				t.Fatal("no persist timer with a zero window")
			}
			cli.e.AdvanceTo(d)
			srv.e.AdvanceTo(d)
			relay(cli, srv, ". seq=111 ack=301 len=1")
			relay(srv, cli, ". seq=301 ack=111")
			probes++
		}
		cli.wantState(c, Established)
		srv.wantState(s, Established)
		if probes > 100 {
			t.Fatalf("%d probes in an hour: no backoff", probes)
		}
	}},

	// MUST-39 (§3.8.6.2.2): receiver silly window avoidance: as the
	// application reads from a full 4000-byte buffer, the right edge does
	// not move until it can move by min(RCV.BUFF/2, MSS) = 1460.
	//
	//	(4000 bytes received, window 0)
	//	read 100                           (no window update)
	//	read 1400                          > . seq=301 ack=4101 win=1500
	{"MUST-39", func(t *testing.T) {
		srvCfg := fixedConfig(300)
		srvCfg.RecvBuffer, srvCfg.NoWindowScale = 4000, true
		_, srv, _, s := established(t, fixedConfig(100), srvCfg)
		for i := 0; i < 4; i++ {
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: Seq(101 + 1000*i), Ack: 301, Window: 65535, Payload: make([]byte, 1000)})
		}
		srv.collect()
		if last := srv.out[len(srv.out)-1]; last.Segment.Window != 0 {
			t.Fatalf("window %d with the buffer full, want 0", last.Segment.Window)
		}
		srv.out = nil
		buf := make([]byte, 1400)
		srv.e.Receive(s, buf[:100])
		srv.expectNothing()
		srv.e.Receive(s, buf)
		if p := srv.expect(". seq=301 ack=4101"); p.Segment.Window != 1500 {
			t.Fatalf("window update %d, want 1500", p.Segment.Window)
		}
	}},

	// MUST-40 (§3.8.6.3): the ACK delay stays under 0.5 s whatever is
	// configured.
	{"MUST-40", func(t *testing.T) {
		if d := (Config{DelayedAckTimeout: 2 * time.Second}).Defaults().DelayedAckTimeout; d >= 500*time.Millisecond {
			t.Fatalf("delayed-ACK timeout %v, want < 500ms", d)
		}
	}},

	// MUST-41, MUST-42 (§3.9.1.1): a LISTEN on a port whose address already
	// has a connection in SYN-SENT is allowed and leaves that connection
	// alone: its SYN is still retransmitted, and the listener answers a
	// SYN from another host.
	{"MUST-42", func(t *testing.T) {
		srv := newSide(t, "server", fixedConfig(300))
		peer := netip.MustParseAddrPort("10.0.0.3:5000")
		c, err := srv.e.Connect(serverAddr, peer)
		if err != nil {
			t.Fatal(err)
		}
		srv.expect("S seq=300")
		if _, err := srv.e.Listen(serverAddr, 0); err != nil {
			t.Fatalf("Listen on the port of a SYN-SENT connection: %v", err)
		}
		srv.wantState(c, SynSent)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
		srv.expect("S. seq=300 ack=101")
		srv.e.AdvanceTo(time.Second)
		p := srv.expect("S seq=300")
		if p.Dst != peer.Addr() {
			t.Fatalf("SYN retransmitted to %v, want %v", p.Dst, peer.Addr())
		}
		srv.wantState(c, SynSent)
	}},

	// MUST-43, MUST-45 (§3.9.1.1): OPEN takes a local address. A passive
	// OPEN on one address does not answer for another; one on the
	// unspecified address binds each connection to the address its SYN
	// came to and sends every segment from it.
	{"MUST-43", func(t *testing.T) {
		other := netip.MustParseAddrPort("10.0.0.9:80")
		srv := newSide(t, "server", fixedConfig(300))
		srv.e.Listen(serverAddr, 0)
		srv.inject(clientAddr, other, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
		srv.expect("R. seq=0 ack=101")

		any := newSide(t, "server", fixedConfig(300))
		any.e.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
		any.inject(clientAddr, other, Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
		if p := any.expect("S. seq=300 ack=101"); p.Src != other.Addr() {
			t.Fatalf("SYN,ACK from %v, want %v", p.Src, other.Addr())
		}
		any.inject(clientAddr, other, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 1000})
		id, ok := any.e.Lookup(Tuple{Local: other, Remote: clientAddr})
		if !ok {
			t.Fatal("no connection for the SYN's destination address")
		}
		if _, err := any.e.Send(id, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if p := any.expect("P. seq=301 ack=101 len=1"); p.Src != other.Addr() {
			t.Fatalf("data from %v, want %v", p.Src, other.Addr())
		}
	}},

	// MUST-44 (§3.9.1.1): the IP layer chooses the source address; the
	// engine has none of its own, so an active OPEN without a local
	// address is refused and the host (the service) supplies one.
	// MUST-46: an OPEN to a broadcast or multicast address is an error.
	{"MUST-46", func(t *testing.T) {
		e := New(fixedConfig(100))
		for _, tc := range []struct{ local, remote string }{
			{"0.0.0.0:40000", "10.0.0.1:80"},
			{"10.0.0.2:40000", "224.0.0.1:80"},
			{"10.0.0.2:40000", "255.255.255.255:80"},
			{"[2001:db8::2]:40000", "[ff02::1]:80"},
		} {
			if _, err := e.Connect(netip.MustParseAddrPort(tc.local), netip.MustParseAddrPort(tc.remote)); !errors.Is(err, ErrInvalidAddress) {
				t.Errorf("Connect(%s, %s) = %v, want %v", tc.local, tc.remote, err, ErrInvalidAddress)
			}
		}
		if r := e.Ready(); len(r.Packets) != 0 {
			t.Fatalf("refused OPENs sent %d segments", len(r.Packets))
		}
	}},

	// MUST-48 (§3.9.1.9): the application chooses the Differentiated
	// Services field it sends on a connection; an accepted connection
	// starts with its listener's (the SYN,ACK already carries it).
	{"MUST-48", func(t *testing.T) {
		const ef = 0xb8 // DSCP 46 (expedited forwarding) << 2
		cli, srv := newSide(t, "client", fixedConfig(100)), newSide(t, "server", fixedConfig(300))
		l, _ := srv.e.Listen(serverAddr, 0)
		if err := srv.e.SetSockOpts(l, SockOpts{TrafficClass: ef}); err != nil {
			t.Fatal(err)
		}
		c, _ := cli.e.Connect(clientAddr, serverAddr)
		relay(cli, srv, "S seq=100")
		if p := relay(srv, cli, "S. seq=300 ack=101"); p.Data[1] != ef {
			t.Fatalf("SYN,ACK TOS %#x, want %#x", p.Data[1], ef)
		}
		relay(cli, srv, ". seq=101 ack=301")
		cli.e.SetSockOpts(c, SockOpts{TrafficClass: 0x28 | 3}) // AF11; the ECN bits are not ours to set
		mustSend(t, cli, c, "x")
		if p := cli.expect("P. seq=101 ack=301 len=1"); p.Data[1] != 0x28 {
			t.Fatalf("TOS %#x, want 0x28", p.Data[1])
		}
		v6 := New(fixedConfig(100))
		id, _ := v6.Connect(netip.MustParseAddrPort("[2001:db8::2]:40000"), netip.MustParseAddrPort("[2001:db8::1]:80"))
		v6.Ready()
		v6.SetSockOpts(id, SockOpts{TrafficClass: ef})
		v6.AdvanceTo(time.Second)
		r := v6.Ready()
		if len(r.Packets) != 1 {
			t.Fatalf("%d packets, want the SYN again", len(r.Packets))
		}
		if d := r.Packets[0].Data; d[0] != 0x60|ef>>4 || d[1]>>4 != ef&0x0f {
			t.Fatalf("IPv6 header starts %x, want traffic class %#x", d[:2], ef)
		}
	}},

	// MUST-49 (§3.9.2): the TTL (IPv6 hop limit) of the segments sent is
	// configurable; the IPv4 header checksum follows it.
	{"MUST-49", func(t *testing.T) {
		cfg := fixedConfig(100)
		cfg.HopLimit = 7
		e := New(cfg)
		e.Connect(clientAddr, serverAddr)
		e.Connect(netip.MustParseAddrPort("[2001:db8::2]:40000"), netip.MustParseAddrPort("[2001:db8::1]:80"))
		r := e.Ready()
		if len(r.Packets) != 2 {
			t.Fatalf("%d packets, want two SYNs", len(r.Packets))
		}
		if d := r.Packets[0].Data; d[8] != 7 {
			t.Fatalf("IPv4 TTL %d, want 7", d[8])
		}
		if d := r.Packets[1].Data; d[7] != 7 {
			t.Fatalf("IPv6 hop limit %d, want 7", d[7])
		}
		for _, p := range r.Packets {
			if _, _, _, err := ParsePacket(p.Data); err != nil {
				t.Fatalf("packet does not parse: %v", err)
			}
		}
		if h := New(Config{}).Config().HopLimit; h != 64 {
			t.Fatalf("default hop limit %d, want 64", h)
		}
	}},

	// MUST-54, MUST-55, MUST-56 (§3.9.2.2; icmp.go): an ICMP error is
	// acted on for the connection whose segment it quotes (MUST-54): a
	// soft one (Destination Unreachable, code 1, host unreachable) is
	// recorded and reported (SHLD-25) but never aborts (MUST-56); a Source
	// Quench is discarded silently (MUST-55); a hard error (port
	// unreachable) aborts an opening connection (SHLD-26,
	// TestICMPErrorsInSynSent).
	{"MUST-54", func(t *testing.T) {
		cli, _, c, _ := defaultPair(t)
		mustSend(t, cli, c, "x")
		cli.expect("P. seq=101 ack=301 len=1")
		icmp := []byte{3, 1, 0, 0, 0, 0, 0, 0}
		quoted := AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &Segment{SrcPort: clientAddr.Port(), DstPort: serverAddr.Port(), Seq: 101, Flags: FlagACK})
		icmp = append(icmp, quoted[:28]...)
		binary.BigEndian.PutUint16(icmp[2:], FoldChecksum(Checksum(icmp, 0)))
		ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 254, 10, 0, 0, 2}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
		binary.BigEndian.PutUint16(ip[10:], FoldChecksum(Checksum(ip, 0)))
		if err := cli.e.Deliver(append(ip, icmp...)); err != nil {
			t.Fatalf("Deliver(ICMP) = %v", err)
		}
		if r := cli.collect(); !hasExplanation(r, CodeICMPSoftError) {
			t.Fatal("the soft error was not explained as ICMP_SOFT_ERROR")
		}
		if err := cli.e.SoftError(c); !errors.Is(err, ErrHostUnreachable) {
			t.Fatalf("SoftError = %v, want host unreachable", err)
		}
		cli.expectNothing()
		cli.wantState(c, Established)
		quench := append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, quoted[:28]...)
		binary.BigEndian.PutUint16(quench[2:], FoldChecksum(Checksum(quench, 0)))
		if err := cli.e.DeliverICMP(routerAddr, clientAddr.Addr(), quench); err != nil {
			t.Fatal(err)
		}
		if r := cli.collect(); !hasExplanation(r, CodeICMPIgnored) {
			t.Fatal("the source quench was not explained as ICMP_IGNORED")
		}
		cli.expectNothing()
		cli.wantState(c, Established)
	}},

	// MUST-57 (§3.9.2.3): a SYN to a broadcast or multicast address is
	// discarded silently, even by a listener on every address.
	// MUST-63: so is a SYN from an address no host has (multicast,
	// broadcast, unspecified).
	{"MUST-57", func(t *testing.T) {
		srv := newSide(t, "server", fixedConfig(300))
		srv.e.Listen(netip.MustParseAddrPort("0.0.0.0:80"), 0)
		srv.e.Listen(netip.MustParseAddrPort("[::]:80"), 0)
		for _, tc := range []struct{ from, to string }{
			{"10.0.0.2:40000", "224.0.0.1:80"},
			{"10.0.0.2:40000", "255.255.255.255:80"},
			{"[2001:db8::2]:40000", "[ff02::1]:80"},
			{"224.0.0.5:40000", "10.0.0.1:80"},
			{"255.255.255.255:40000", "10.0.0.1:80"},
			{"0.0.0.0:40000", "10.0.0.1:80"},
			{"[ff02::2]:40000", "[2001:db8::1]:80"},
		} {
			srv.inject(netip.MustParseAddrPort(tc.from), netip.MustParseAddrPort(tc.to), Segment{Flags: FlagSYN, Seq: 100, Window: 1000})
			r := srv.collect()
			wantExplanation(t, r, CodeBadAddress)
			srv.expectNothing()
		}
		if n := len(srv.e.Endpoints()); n != 2 {
			t.Fatalf("%d endpoints, want the two listeners only", n)
		}
	}},

	// MUST-58, MUST-59 (§3.10.7.4): ACKs are aggregated: segments that
	// arrive together are all processed before one ACK covers them
	// (delayed ACKs on, the engine's default).
	//
	//	< P. seq=101 ack=301 len=10
	//	< P. seq=111 ack=301 len=10
	//	< P. seq=121 ack=301 len=10
	//	  (nothing until the delayed-ACK timer)
	//	> .  seq=301 ack=131
	{"MUST-58", func(t *testing.T) {
		srvCfg := fixedConfig(300)
		srvCfg.NoDelayedAck = false
		_, srv, _, s := established(t, fixedConfig(100), srvCfg)
		for i := 0; i < 3; i++ {
			srv.inject(clientAddr, serverAddr, Segment{Flags: FlagPSH | FlagACK, Seq: Seq(101 + 10*i), Ack: 301, Window: 1000, Payload: []byte("0123456789")})
		}
		srv.expectNothing()
		srv.e.AdvanceTo(srv.e.Config().DelayedAckTimeout)
		srv.expect(". seq=301 ack=131")
		srv.expectNothing()
		mustRead(t, srv, s, "012345678901234567890123456789")
	}},

	// MUST-60, MUST-61, MUST-65 (§3.9.1.2, §3.2): SEND has no PUSH flag
	// here, so data is never held indefinitely (Nagle waits for an ACK, no
	// longer) and the last segment of what is queued carries PSH; and the
	// MSS option is sent on SYNs only, never on data or ACKs.
	//
	//	write 3000 bytes
	//	> .  seq=101 ack=301 len=1460
	//	> .  seq=1561 ack=301 len=1460
	//	< .  seq=301 ack=1561
	//	< .  seq=301 ack=3021
	//	> P. seq=3021 ack=301 len=80
	{"MUST-61", func(t *testing.T) {
		cli, srv, c, _ := defaultPair(t)
		mustSend(t, cli, c, string(make([]byte, 3000)))
		var ps []Packet
		ps = append(ps, relay(cli, srv, ". seq=101 ack=301 len=1460"))
		ps = append(ps, relay(cli, srv, ". seq=1561 ack=301 len=1460"))
		cli.expectNothing() // Nagle holds the short tail while data is in flight...
		ps = append(ps, relay(srv, cli, ". seq=301 ack=1561"))
		ps = append(ps, relay(srv, cli, ". seq=301 ack=3021"))
		ps = append(ps, relay(cli, srv, "P. seq=3021 ack=301 len=80")) // ...only until the ACK (MUST-60)
		ps = append(ps, relay(srv, cli, ". seq=301 ack=3101"))
		for _, p := range ps {
			if p.Segment.Options.HasMSS {
				t.Fatalf("MSS option on a non-SYN segment %s", segSummary(&p.Segment))
			}
		}
	}},

	// MUST-66 (§3.4): with the receive window zero, the URG and RST fields
	// are still processed.
	//
	//	(window 0)
	//	< U. seq=111 ack=301 urg=1 len=1
	//	> .  seq=301 ack=111               text dropped, RCV.UP = 112
	//	< R  seq=111                       connection reset
	{"MUST-66", func(t *testing.T) {
		srvCfg := fixedConfig(300)
		srvCfg.RecvBuffer, srvCfg.NoWindowScale = 10, true
		cli, srv, c, s := established(t, fixedConfig(100), srvCfg)
		mustSend(t, cli, c, "0123456789")
		relay(cli, srv, "P. seq=101 ack=301 len=10")
		relay(srv, cli, ". seq=301 ack=111")
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagURG | FlagACK, Seq: 111, Ack: 301, Window: 1000, Urgent: 1, Payload: []byte("!")})
		r := srv.collect()
		wantExplanation(t, r, CodeZeroWindowTextDropped)
		wantEvent(t, r, EventUrgent)
		srv.expect(". seq=301 ack=111")
		if u, _ := srv.e.Urgent(s); !u.Pending || u.Pointer != 112 {
			t.Fatalf("urgent state %+v, want RCV.UP 112 pending", u)
		}
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagRST, Seq: 111})
		wantEvent(t, srv.collect(), EventReset)
		srv.wantState(s, Closed)
	}},

	// MUST-67 (§3.7.1): the MSS offered is what the host says its IP layer
	// can take (Config.MSS = MMS_R − 20, the host's to compute from its
	// MTU), on every SYN and SYN,ACK.
	{"MUST-67", func(t *testing.T) {
		cfg := fixedConfig(100)
		cfg.MSS = 1220
		e := New(cfg)
		e.Connect(clientAddr, serverAddr)
		r := e.Ready()
		if o := r.Packets[0].Segment.Options; !o.HasMSS || o.MSS != 1220 {
			t.Fatalf("SYN options %+v, want MSS 1220", o)
		}
	}},

	// MUST-68, MUST-69 (§3.1): every option the engine writes but EOL and
	// NOP has a length byte, and the header after the options is padded
	// with zeros (EOL) to a 32-bit boundary.
	{"MUST-69", func(t *testing.T) {
		for mask := 0; mask < 32; mask++ {
			o := Options{
				HasMSS: mask&1 != 0, MSS: 1460,
				HasWScale: mask&2 != 0, WScale: 7,
				SACKPermitted: mask&4 != 0,
				HasTimestamp:  mask&8 != 0, TSVal: 1, TSEcr: 2,
			}
			if mask&16 != 0 {
				o.NumSACK, o.SACK[0] = 1, SACKBlock{1, 2}
			}
			b := appendOptions(nil, &o)
			if len(b)%4 != 0 {
				t.Fatalf("%+v: %d option bytes, not a multiple of 4", o, len(b))
			}
			for i := 0; i < len(b); {
				switch b[i] {
				case optEOL:
					for _, x := range b[i:] {
						if x != 0 {
							t.Fatalf("%+v: non-zero byte after EOL in %x", o, b)
						}
					}
					i = len(b)
				case optNOP:
					i++
				default:
					if i+1 >= len(b) || b[i+1] < 2 {
						t.Fatalf("%+v: option %d without a length in %x", o, b[i], b)
					}
					i += int(b[i+1])
				}
			}
		}
	}},
}

// rawOptionsErr delivers seg from -> to with opts as its option bytes
// (padded with EOL), for options the encoder would never write.
func (s *side) rawOptionsErr(from, to netip.AddrPort, seg Segment, opts []byte) error {
	s.t.Helper()
	seg.SrcPort, seg.DstPort = from.Port(), to.Port()
	for len(opts)%4 != 0 {
		opts = append(opts, optEOL)
	}
	plain := AppendSegment(nil, &seg, from.Addr(), to.Addr())
	tcp := append(append(append([]byte(nil), plain[:MinHeaderLen]...), opts...), plain[MinHeaderLen:]...)
	tcp[12] = byte((MinHeaderLen+len(opts))/4) << 4
	tcp[16], tcp[17] = 0, 0
	sum := Checksum(tcp, PseudoHeaderSum(from.Addr(), to.Addr(), len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], FoldChecksum(sum))
	return s.e.DeliverSegment(from.Addr(), to.Addr(), tcp)
}

func (s *side) rawOptions(from, to netip.AddrPort, seg Segment, opts []byte) {
	s.t.Helper()
	if err := s.rawOptionsErr(from, to, seg, opts); err != nil {
		s.t.Fatalf("%s: deliver: %v", s.name, err)
	}
}

func wantEvent(t *testing.T, r Ready, k EventKind) {
	t.Helper()
	if !anyEvent(r, k) {
		t.Fatalf("no %s event in %v", k, r.Events)
	}
}

func anyEvent(r Ready, k EventKind) bool {
	for _, ev := range r.Events {
		if ev.Kind == k {
			return true
		}
	}
	return false
}

// giveUp runs c's timers until it closes, checking each retransmission
// against want; it returns how many there were and whether the
// application was told the connection timed out.
func giveUp(t *testing.T, s *side, c EndpointID, want string) (retx int, timedOut bool) {
	t.Helper()
	for i := 0; i < 100 && s.state(c) != Closed; i++ {
		d, ok := s.e.NextDeadline()
		if !ok {
			break
		}
		s.e.AdvanceTo(d)
		r := s.collect()
		timedOut = timedOut || anyEvent(r, EventTimedOut)
		for len(s.out) > 0 {
			if s.out[0].Segment.Flags&FlagRST != 0 {
				s.out = s.out[1:]
				continue
			}
			s.expect(want)
			retx++
		}
	}
	s.wantState(c, Closed)
	return retx, timedOut
}
