package fsm

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// Tests of ICMP input (icmp.go): the router at routerAddr reports on a
// segment the client sent, as packetdrill's "< icmp ..." lines do.

var (
	routerAddr   = netip.MustParseAddr("10.0.0.254")
	client6Addr  = netip.MustParseAddrPort("[2001:db8::2]:40000")
	server6Addr  = netip.MustParseAddrPort("[2001:db8::1]:80")
	router6Addr  = netip.MustParseAddr("2001:db8::fe")
	clientTuple  = Tuple{Local: clientAddr, Remote: serverAddr}
	client6Tuple = Tuple{Local: client6Addr, Remote: server6Addr}
)

// icmpMessage builds an ICMP (IPv4 tuple) or ICMPv6 message of type and
// code, with mtu in its MTU field, quoting a segment of q with sequence
// number seq and n bytes of data.
func icmpMessage(src netip.Addr, typ, code uint8, mtu uint32, q Tuple, seq Seq, n int) []byte {
	seg := Segment{SrcPort: q.Local.Port(), DstPort: q.Remote.Port(), Seq: seq, Flags: FlagACK, Payload: make([]byte, n)}
	quoted := AppendPacket(nil, q.Local.Addr(), q.Remote.Addr(), &seg)
	v6 := !src.Is4()
	hdr := 20 + 8
	if v6 {
		hdr = 40 + 8
	}
	b := make([]byte, 8, 8+hdr)
	b[0], b[1] = typ, code
	if v6 {
		binary.BigEndian.PutUint32(b[4:], mtu)
	} else {
		binary.BigEndian.PutUint16(b[6:], uint16(mtu))
	}
	b = append(b, quoted[:hdr]...)
	var sum uint32
	if v6 {
		sum = PseudoHeaderSumProto(src, q.Local.Addr(), len(b), protoICMPv6)
	}
	binary.BigEndian.PutUint16(b[2:], FoldChecksum(Checksum(b, sum)))
	return b
}

// icmpPacket wraps an ICMPv4 message in an IPv4 header from the router.
func icmpPacket(msg []byte, dst netip.Addr) []byte {
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, protoICMP, 0, 0}
	ip = append(ip, routerAddr.AsSlice()...)
	ip = append(ip, dst.AsSlice()...)
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(msg)))
	binary.BigEndian.PutUint16(ip[10:], FoldChecksum(Checksum(ip, 0)))
	return append(ip, msg...)
}

func lastCode(t *testing.T, r Ready) Code {
	t.Helper()
	if len(r.Explanations) == 0 {
		t.Fatal("no explanation")
	}
	return r.Explanations[len(r.Explanations)-1].Code
}

// TestICMPErrorsInSynSent: what each error does to a connection whose SYN
// is in flight, per profile: the hard ones (RFC 1122 §4.2.3.9 codes 2 and
// 3, and under freebsd the prohibited codes and time exceeded) abort it
// with their error; everything else leaves it opening.
func TestICMPErrorsInSynSent(t *testing.T) {
	for _, tc := range []struct {
		name       string
		v6         bool
		typ, code  uint8
		profile    string
		noReset    bool
		wantCode   Code
		wantErr    error // nil: still SYN-SENT
		wantRefuse bool
	}{
		{"port unreachable aborts with connection refused", false, 3, 3, "rfc", false, CodeICMPHardAbort, ErrConnectionRefused, true},
		{"protocol unreachable aborts", false, 3, 2, "rfc", false, CodeICMPHardAbort, ErrConnectionRefused, true},
		{"ICMPv6 port unreachable aborts", true, 1, 4, "rfc", false, CodeICMPHardAbort, ErrConnectionRefused, true},
		{"ICMPv6 unknown next header is protocol unreachable", true, 4, 1, "rfc", false, CodeICMPHardAbort, ErrConnectionRefused, true},
		{"host prohibited is soft under rfc", false, 3, 10, "rfc", false, CodeICMPSoftError, nil, false},
		{"host prohibited aborts under freebsd", false, 3, 10, "freebsd", false, CodeICMPHardAbortBSD, ErrConnectionRefused, true},
		{"communication prohibited aborts under freebsd", false, 3, 13, "freebsd", false, CodeICMPHardAbortBSD, ErrConnectionRefused, true},
		{"ICMPv6 admin prohibited aborts under freebsd", true, 1, 1, "freebsd", false, CodeICMPHardAbortBSD, ErrConnectionRefused, true},
		{"TTL exceeded aborts with host unreachable under freebsd", false, 11, 0, "freebsd", false, CodeICMPHardAbortBSD, ErrHostUnreachable, false},
		{"hop limit exceeded is soft under rfc", true, 3, 0, "rfc", false, CodeICMPSoftError, nil, false},
		{"net unreachable is soft", false, 3, 0, "freebsd", false, CodeICMPSoftError, nil, false},
		{"host unreachable is soft", false, 3, 1, "rfc", false, CodeICMPSoftError, nil, false},
		{"port unreachable with icmp_may_rst=0 is only recorded", false, 3, 3, "freebsd", true, CodeICMPHardNoReset, nil, false},
		{"source quench is discarded (MUST-55)", false, 4, 0, "rfc", false, CodeICMPIgnored, nil, false},
		{"redirect is the IP layer's", false, 5, 1, "rfc", false, CodeICMPIgnored, nil, false},
		{"parameter problem is soft", false, 12, 0, "rfc", false, CodeICMPSoftError, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fixedConfig(100)
			p, _ := ProfileByName(tc.profile)
			if err := p.Apply(&cfg); err != nil {
				t.Fatal(err)
			}
			cfg.ICMPNoReset = tc.noReset
			s := newSide(t, "client", cfg)
			local, remote, router, q := clientAddr, serverAddr, routerAddr, clientTuple
			if tc.v6 {
				local, remote, router, q = client6Addr, server6Addr, router6Addr, client6Tuple
			}
			c, err := s.e.Connect(local, remote)
			if err != nil {
				t.Fatal(err)
			}
			s.expect("S seq=100")
			if err := s.e.DeliverICMP(router, local.Addr(), icmpMessage(router, tc.typ, tc.code, 0, q, 100, 0)); err != nil {
				t.Fatal(err)
			}
			r := s.collect()
			if got := lastCode(t, r); got != tc.wantCode {
				t.Fatalf("explained %s, want %s", got, tc.wantCode)
			}
			if r.Explanations[len(r.Explanations)-1].Section() == "" {
				t.Error("the explanation names no RFC section")
			}
			if tc.wantErr == nil {
				s.wantState(c, SynSent)
				s.expectNothing()
				return
			}
			in, _ := s.e.Endpoint(c)
			if in.State != Closed || !errors.Is(in.Err, tc.wantErr) {
				t.Fatalf("endpoint is %s with %v, want CLOSED with %v", in.State, in.Err, tc.wantErr)
			}
			refused := false
			for _, ev := range r.Events {
				refused = refused || ev.Kind == EventRefused
			}
			if refused != tc.wantRefuse {
				t.Errorf("EventRefused %t, want %t", refused, tc.wantRefuse)
			}
		})
	}
}

// TestICMPQuotedSequenceMustBeInFlight: RFC 5927 §4.1: a port unreachable
// quoting ISS-1 or ISS+1 (= SND.NXT) names no segment in flight and is
// ignored, so a blind attacker who guesses the ports but not the sequence
// number cannot abort the open; quoting ISS aborts it.
func TestICMPQuotedSequenceMustBeInFlight(t *testing.T) {
	s := newSide(t, "client", fixedConfig(100))
	c, _ := s.e.Connect(clientAddr, serverAddr)
	s.expect("S seq=100")
	for _, seq := range []Seq{99, 101, 5000} {
		if err := s.e.DeliverICMP(routerAddr, clientAddr.Addr(), icmpMessage(routerAddr, 3, 3, 0, clientTuple, seq, 0)); err != nil {
			t.Fatal(err)
		}
		r := s.collect()
		if got := lastCode(t, r); got != CodeICMPOutOfWindow {
			t.Fatalf("seq %d: explained %s, want ICMP_OUT_OF_WINDOW", seq, got)
		}
		if v, _ := r.Explanations[0].Field("SND.NXT"); v != 101 {
			t.Errorf("SND.NXT field %d, want 101", v)
		}
		s.wantState(c, SynSent)
	}
	if err := s.e.Deliver(icmpPacket(icmpMessage(routerAddr, 3, 3, 0, clientTuple, 100, 0), clientAddr.Addr())); err != nil {
		t.Fatal(err)
	}
	s.wantState(c, Closed)
}

// TestICMPSoftErrorsKeepEstablished: on a synchronized connection even a
// hard error is only recorded (RFC 5461 §4; MUST-56 for soft ones), and
// SoftError reports it.
func TestICMPSoftErrorsKeepEstablished(t *testing.T) {
	cli, _, c, _ := defaultPair(t)
	mustSend(t, cli, c, "hello")
	cli.expect("P. seq=101 ack=301 len=5")
	for _, tc := range []struct {
		typ, code uint8
		want      Code
		err       error
	}{
		{3, 1, CodeICMPSoftError, ErrHostUnreachable},
		{3, 0, CodeICMPSoftError, ErrNetUnreachable},
		{3, 3, CodeICMPHardAsSoft, ErrConnectionRefused},
	} {
		if err := cli.e.Deliver(icmpPacket(icmpMessage(routerAddr, tc.typ, tc.code, 0, clientTuple, 101, 5), clientAddr.Addr())); err != nil {
			t.Fatal(err)
		}
		if got := lastCode(t, cli.collect()); got != tc.want {
			t.Fatalf("%d/%d: explained %s, want %s", tc.typ, tc.code, got, tc.want)
		}
		cli.wantState(c, Established)
		if err := cli.e.SoftError(c); !errors.Is(err, tc.err) {
			t.Fatalf("SoftError = %v, want %v", err, tc.err)
		}
	}
	cli.expectNothing()
}

// TestPMTUFragNeededResendsSmaller: "fragmentation needed" with a next-hop
// MTU of 1000 for a full-sized segment in flight: the MSS becomes 960 and
// the segment goes again at once in two pieces' worth, the first 960
// bytes now; a larger MTU later changes nothing; a tiny one stops at the
// 296-byte floor.
func TestPMTUFragNeededResendsSmaller(t *testing.T) {
	cli, _, c, _ := defaultPair(t)
	data := make([]byte, 1460)
	if _, err := cli.e.Send(c, data); err != nil {
		t.Fatal(err)
	}
	cli.expect("P. seq=101 ack=301 len=1460")
	frag := func(mtu uint32, seq Seq) Ready {
		t.Helper()
		if err := cli.e.Deliver(icmpPacket(icmpMessage(routerAddr, 3, 4, mtu, clientTuple, seq, 1460), clientAddr.Addr())); err != nil {
			t.Fatal(err)
		}
		return cli.collect()
	}
	r := frag(1000, 101)
	if got := lastCode(t, r); got != CodePMTULowered && !hasExplanation(r, CodePMTULowered) {
		t.Fatalf("explained %s, want PMTU_LOWERED", got)
	}
	cli.expect(". seq=101 ack=301 len=960")
	cli.expect("P. seq=1061 ack=301 len=500")
	if r := frag(1400, 101); lastCode(t, r) != CodePMTUNotSmaller {
		t.Fatalf("a larger MTU: explained %s, want PMTU_NOT_SMALLER", lastCode(t, r))
	}
	r = frag(100, 101)
	if !hasExplanation(r, CodePMTULowered) {
		t.Fatal("MTU 100: not lowered to the floor")
	}
	cli.expect(". seq=101 ack=301 len=256")
	if got := cli.e.byID[c].effMSS(); got != 256 {
		t.Fatalf("effective MSS %d, want 256 (floor 296 - 40)", got)
	}
	if r := frag(100, 99); lastCode(t, r) != CodeICMPOutOfWindow {
		t.Fatalf("stale frag needed: explained %s, want ICMP_OUT_OF_WINDOW", lastCode(t, r))
	}
}

// TestPMTUPacketTooBigInSynSent: an ICMPv6 Packet Too Big in SYN-SENT
// lowers the MSS option of the retransmitted SYN only under pmtu_syn_mss
// (freebsd); under rfc it caps the send MSS and the option stays. The
// IPv6 floor is 1280 (RFC 8201 §4).
func TestPMTUPacketTooBigInSynSent(t *testing.T) {
	for _, tc := range []struct {
		profile string
		mtu     uint32
		wantMSS uint16
	}{
		{"rfc", 1300, 1460},
		{"freebsd", 1300, 1240},
		{"freebsd", 600, 1220},
	} {
		cfg := fixedConfig(100)
		p, _ := ProfileByName(tc.profile)
		p.Apply(&cfg)
		s := newSide(t, "client", cfg)
		c, _ := s.e.Connect(client6Addr, server6Addr)
		s.expect("S seq=100")
		if err := s.e.DeliverICMP(router6Addr, client6Addr.Addr(), icmpMessage(router6Addr, 2, 0, tc.mtu, client6Tuple, 100, 0)); err != nil {
			t.Fatal(err)
		}
		s.collect()
		s.e.AdvanceTo(s.e.Now() + s.e.Config().InitialRTO)
		syn := s.expect("S seq=100")
		if syn.Segment.Options.MSS != tc.wantMSS {
			t.Errorf("%s, PTB %d: retransmitted SYN has mss %d, want %d", tc.profile, tc.mtu, syn.Segment.Options.MSS, tc.wantMSS)
		}
		if got := s.e.byID[c].pmtuMSS; got != max(uint16(tc.mtu), 1280)-60 {
			t.Errorf("%s, PTB %d: path MSS %d", tc.profile, tc.mtu, got)
		}
	}
}

// TestICMPWithoutConnection: an error quoting no connection, and a
// message that is not an error (echo request), are explained and dropped.
func TestICMPWithoutConnection(t *testing.T) {
	s := newSide(t, "client", fixedConfig(100))
	if err := s.e.DeliverICMP(routerAddr, clientAddr.Addr(), icmpMessage(routerAddr, 3, 3, 0, clientTuple, 100, 0)); err != nil {
		t.Fatal(err)
	}
	if got := lastCode(t, s.collect()); got != CodeICMPNoConnection {
		t.Fatalf("explained %s, want ICMP_NO_CONNECTION", got)
	}
	echo := []byte{8, 0, 0, 0, 0, 1, 0, 1}
	binary.BigEndian.PutUint16(echo[2:], FoldChecksum(Checksum(echo, 0)))
	if err := s.e.DeliverICMP(routerAddr, clientAddr.Addr(), echo); err != nil {
		t.Fatal(err)
	}
	if got := lastCode(t, s.collect()); got != CodeICMPNotError {
		t.Fatalf("explained %s, want ICMP_NOT_ERROR", got)
	}
}

// TestParseICMPRejects: malformed messages are *ParseErrors naming the
// field, and change nothing.
func TestParseICMPRejects(t *testing.T) {
	good := icmpMessage(routerAddr, 3, 3, 0, clientTuple, 100, 0)
	bad := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name  string
		src   netip.Addr
		msg   []byte
		field string
	}{
		{"short header", routerAddr, good[:7], "length"},
		{"bad checksum", routerAddr, bad(func(b []byte) []byte { b[2] ^= 1; return b }), "checksum"},
		{"quote too short", routerAddr, fixSum(good[:8+20+4]), "quoted datagram"},
		{"quote not TCP", routerAddr, fixSum(bad(func(b []byte) []byte { b[8+9] = 17; return b })), "quoted protocol"},
		{"mixed families", router6Addr, good, "addresses"},
	} {
		_, err := ParseICMP(tc.src, clientAddr.Addr(), tc.msg)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Field != tc.field {
			t.Errorf("%s: %v, want a ParseError on %s", tc.name, err, tc.field)
		}
	}
	m, err := ParseICMP(routerAddr, clientAddr.Addr(), good)
	if err != nil || m.Quoted != clientTuple || m.Seq != 100 || !m.IsError {
		t.Fatalf("good message: %+v, %v", m, err)
	}
}

func fixSum(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], FoldChecksum(Checksum(b, 0)))
	return b
}

// FuzzParseICMP: ParseICMP never panics, and DeliverICMP of whatever it
// accepts keeps the engine's invariants (no panic, explained).
func FuzzParseICMP(f *testing.F) {
	f.Add(false, icmpMessage(routerAddr, 3, 3, 0, clientTuple, 100, 0))
	f.Add(false, icmpMessage(routerAddr, 3, 4, 1000, clientTuple, 101, 1460))
	f.Add(true, icmpMessage(router6Addr, 2, 0, 1280, client6Tuple, 100, 0))
	f.Add(true, icmpMessage(router6Addr, 4, 1, 0, client6Tuple, 100, 0))
	f.Fuzz(func(t *testing.T, v6 bool, b []byte) {
		src, dst := routerAddr, clientAddr.Addr()
		if v6 {
			src, dst = router6Addr, client6Addr.Addr()
		}
		if len(b) >= 4 {
			b[2], b[3] = 0, 0 // let the fuzzer past the checksum
			var sum uint32
			if v6 {
				sum = PseudoHeaderSumProto(src, dst, len(b), protoICMPv6)
			}
			binary.BigEndian.PutUint16(b[2:], FoldChecksum(Checksum(b, sum)))
		}
		if _, err := ParseICMP(src, dst, b); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		e := New(fixedConfig(100))
		local, remote := clientAddr, serverAddr
		if v6 {
			local, remote = client6Addr, server6Addr
		}
		if _, err := e.Connect(local, remote); err != nil {
			t.Fatal(err)
		}
		e.Ready()
		if err := e.DeliverICMP(src, dst, b); err != nil {
			t.Fatal(err)
		}
		if len(e.Ready().Explanations) == 0 {
			t.Fatal("an accepted ICMP message was not explained")
		}
	})
}

// TestICMPSoftErrorNamedAtGiveUp: an open that times out after a host
// unreachable reports both the timeout and the soft error (RFC 1122
// §4.2.3.9; FreeBSD's t_softerror), so the application learns why.
func TestICMPSoftErrorNamedAtGiveUp(t *testing.T) {
	cfg := fixedConfig(100)
	cfg.SynRetries = 1
	s := newSide(t, "client", cfg)
	c, _ := s.e.Connect(clientAddr, serverAddr)
	s.expect("S seq=100")
	if err := s.e.DeliverICMP(routerAddr, clientAddr.Addr(), icmpMessage(routerAddr, 3, 1, 0, clientTuple, 100, 0)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		s.e.AdvanceTo(s.e.Now() + 10*s.e.Config().InitialRTO)
		s.collect()
	}
	in, _ := s.e.Endpoint(c)
	if in.State != Closed || !errors.Is(in.Err, ErrTimedOut) || !errors.Is(in.Err, ErrHostUnreachable) {
		t.Fatalf("endpoint %s with %v, want CLOSED timed out with host unreachable", in.State, in.Err)
	}
}
