package fsm

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func ecnConfig(isn uint32, on bool) Config {
	cfg := lossConfig(isn)
	cfg.Recovery.ECN = on
	return cfg
}

// TestECNNegotiation: an ECN-setup SYN carries ECE and CWR; the SYN,ACK
// carries ECE alone only if the server has ECN on and the SYN asked; only
// then is new data sent ECT(0) in the IP header. The SYN and SYN,ACK are
// never ECT themselves.
// Reference: RFC 3168 §6.1.1, §6.1.5.
func TestECNNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cli, srv   bool
		synFlags   Flags // ECE|CWR bits of the SYN
		synAckECE  bool
		negotiated bool
	}{
		{"both", true, true, FlagECE | FlagCWR, true, true},
		{"client only", true, false, FlagECE | FlagCWR, false, false},
		{"server only", false, true, 0, false, false},
		{"neither", false, false, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := newSide(t, "client", ecnConfig(100, tc.cli)), newSide(t, "server", ecnConfig(300, tc.srv))
			lid, err := srv.e.Listen(serverAddr, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := cli.e.Connect(clientAddr, serverAddr)
			if err != nil {
				t.Fatal(err)
			}
			syn := cli.take()[0]
			if got := syn.Segment.Flags & (FlagECE | FlagCWR); got != tc.synFlags || ipECN(syn.Data) != ecnNotECT {
				t.Fatalf("SYN ECE|CWR %v, IP ECN %d; want %v, 0", got, ipECN(syn.Data), tc.synFlags)
			}
			srv.deliver(syn)
			synAck := srv.take()[0]
			if got := synAck.Segment.Flags&FlagECE != 0; got != tc.synAckECE || synAck.Segment.Flags&FlagCWR != 0 || ipECN(synAck.Data) != ecnNotECT {
				t.Fatalf("SYN,ACK flags %v, IP ECN %d; want ECE %v, no CWR, not ECT", synAck.Segment.Flags, ipECN(synAck.Data), tc.synAckECE)
			}
			s := completeHandshake(t, cli, srv, synAck, lid)
			mustSend(t, cli, c, "hello")
			data := cli.take()[0]
			want := uint8(ecnNotECT)
			if tc.negotiated {
				want = ecnECT0
			}
			if got := ipECN(data.Data); got != want || len(data.Segment.Payload) != 5 {
				t.Fatalf("data segment IP ECN %d (len %d), want %d", got, len(data.Segment.Payload), want)
			}
			srv.deliver(data)
			ack := srv.take()[0]
			if ipECN(ack.Data) != ecnNotECT || ack.Segment.Flags&FlagECE != 0 {
				t.Fatalf("pure ACK: IP ECN %d, flags %v; want not ECT, no ECE", ipECN(ack.Data), ack.Segment.Flags)
			}
			mustRead(t, srv, s, "hello")
		})
	}
}

// TestECNHalvesOncePerWindow: the link marks CE on two data segments of
// the first window (101 and 501), losing nothing. The receiver echoes ECE
// on every ACK from the first mark until a segment with CWR arrives. The
// sender reduces once, on the first ECE (ACK 201, FlightSize 900: ssthresh
// = cwnd = 450), ignores the ECE of the rest of that window, marks the
// next new data segment CWR, and retransmits nothing.
// Reference: RFC 3168 §6.1.2, §6.1.3.
func TestECNHalvesOncePerWindow(t *testing.T) {
	l, c, s := newTimedLink(t, renoConfig(ecnConfig(100, true)), ecnConfig(300, true), 10*time.Millisecond)
	var cwr []Seq
	notECT := 0
	l.drop = func(p Packet, copyNo int) bool {
		if ipECN(p.Data) != ecnECT0 {
			notECT++
		}
		if p.Segment.Flags&FlagCWR != 0 {
			cwr = append(cwr, p.Segment.Seq)
		}
		if copyNo == 1 && (p.Segment.Seq == 101 || p.Segment.Seq == 501) {
			setIPFields(p.Data, p.Data[8], p.Data[1]|ecnCE) // the router marks CE
		}
		return false
	}
	data := strings.Repeat("c", 3000)
	mustSend(t, l.cli, c, data)
	l.run(l.now + 5*time.Second)
	if in, _ := l.cli.e.Endpoint(c); in.SndUna != 3101 {
		t.Fatalf("SND.UNA %d, want 3101", in.SndUna)
	}
	if n := l.codes[CodeECNReduce]; n != 1 {
		t.Fatalf("ECN_REDUCE %d times, want once per window", n)
	}
	x := frtoExplanation(t, l, CodeECNReduce)
	if ack, fl, ss, cw := frtoField(t, x, "SEG.ACK"), frtoField(t, x, "FLIGHT"), frtoField(t, x, "SSTHRESH"), frtoField(t, x, "CWND"); ack != 201 || fl != 900 || ss != 450 || cw != 450 {
		t.Fatalf("reduction on ACK %d, FlightSize %d, ssthresh %d, cwnd %d; want 201, 900, 450, 450: %s", ack, fl, ss, cw, x.String())
	}
	if len(cwr) != 1 || cwr[0] != 1101 {
		t.Fatalf("CWR on %v, want [1101]: the first new data segment after the reduction", cwr)
	}
	if l.srvCodes[CodeECNCongestionExperienced] != 1 || l.srvCodes[CodeECNCWRReceived] != 1 {
		t.Fatalf("server: ECN_CONGESTION_EXPERIENCED %d, ECN_CWR_RECEIVED %d; want one echo, started and ended once",
			l.srvCodes[CodeECNCongestionExperienced], l.srvCodes[CodeECNCWRReceived])
	}
	if notECT != 0 {
		t.Fatalf("%d data segments not ECT(0)", notECT)
	}
	for seq, n := range l.copies {
		if n != 1 {
			t.Fatalf("%d sent %d times: ECN loses nothing", seq, n)
		}
	}
	mustRead(t, l.srv, s, data)
}

// TestECNSetupFallback: an ECN-setup SYN that times out is resent with the
// setup up to ecn_maxretries times, then without ECE and CWR (explained
// once as ECN_SETUP_FALLBACK); likewise a listener's SYN,ACK, after which
// the connection does without ECN: its data is not ECT.
// Reference: RFC 3168 §6.1.1.1.
func TestECNSetupFallback(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxRetries int
		want       []bool // ECN setup on the first SYN (SYN,ACK) and each retransmission
	}{
		{"linux: the first retransmission goes without", 0, []bool{true, false, false}},
		{"freebsd: the third try goes without", 1, []bool{true, true, false, false}},
	} {
		t.Run("SYN/"+tc.name, func(t *testing.T) {
			cfg := ecnConfig(100, true)
			cfg.Recovery.ECNMaxRetries = tc.maxRetries
			cli := newSide(t, "client", cfg)
			if _, err := cli.e.Connect(clientAddr, serverAddr); err != nil {
				t.Fatal(err)
			}
			fallbacks := 0
			for i, setup := range tc.want {
				if i > 0 {
					at, _ := cli.e.NextDeadline()
					cli.e.AdvanceTo(at)
				}
				r := cli.collect()
				fallbacks += countCode(r, CodeECNSetupFallback)
				syn := cli.out[len(cli.out)-1]
				cli.out = nil
				if got := syn.Segment.Flags&(FlagECE|FlagCWR) == FlagECE|FlagCWR; got != setup || syn.Segment.Flags&FlagSYN == 0 {
					t.Fatalf("SYN %d: flags %v, ECN setup %v, want %v", i, syn.Segment.Flags, got, setup)
				}
			}
			if fallbacks != 1 {
				t.Errorf("ECN_SETUP_FALLBACK explained %d times, want once", fallbacks)
			}
		})
		t.Run("SYN,ACK/"+tc.name, func(t *testing.T) {
			ccfg, scfg := ecnConfig(100, true), ecnConfig(300, true)
			scfg.Recovery.ECNMaxRetries = tc.maxRetries
			cli, srv := newSide(t, "client", ccfg), newSide(t, "server", scfg)
			lid, err := srv.e.Listen(serverAddr, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := cli.e.Connect(clientAddr, serverAddr)
			if err != nil {
				t.Fatal(err)
			}
			srv.deliver(cli.take()[0])
			fallbacks := 0
			var synAck Packet
			for i, setup := range tc.want {
				if i > 0 {
					at, _ := srv.e.NextDeadline()
					srv.e.AdvanceTo(at)
				}
				r := srv.collect()
				fallbacks += countCode(r, CodeECNSetupFallback)
				synAck = srv.out[len(srv.out)-1]
				srv.out = nil
				if got := synAck.Segment.Flags&FlagECE != 0; got != setup || synAck.Segment.Flags&(FlagSYN|FlagACK) != FlagSYN|FlagACK {
					t.Fatalf("SYN,ACK %d: flags %v, ECE %v, want %v", i, synAck.Segment.Flags, got, setup)
				}
			}
			if fallbacks != 1 {
				t.Errorf("ECN_SETUP_FALLBACK explained %d times, want once", fallbacks)
			}
			// The last SYN,ACK (no ECE) completes the handshake: neither
			// side uses ECN, so data goes out not ECT.
			cli.e.AdvanceTo(srv.e.Now())
			cli.take() // its own SYN retransmissions, answered already
			s := completeHandshake(t, cli, srv, synAck, lid)
			mustSend(t, srv, s, "hi")
			mustSend(t, cli, c, "hello")
			for _, p := range append(srv.take(), cli.take()...) {
				if len(p.Segment.Payload) > 0 && ipECN(p.Data) != ecnNotECT {
					t.Errorf("%d bytes sent ECT (%d) after the fallback", len(p.Segment.Payload), ipECN(p.Data))
				}
			}
		})
	}
}

// ecn=2 grants ECN to a peer that asks but never asks itself.
// Reference: RFC 3168 §6.1.1.
func TestECNGrantOnly(t *testing.T) {
	var cfg Config
	if err := cfg.SetSwitch("ecn", "2"); err != nil {
		t.Fatal(err)
	}
	cli := newSide(t, "client", withRecovery(ecnConfig(100, false), cfg.Recovery))
	srv := newSide(t, "server", withRecovery(ecnConfig(300, false), cfg.Recovery))
	asker := newSide(t, "asker", ecnConfig(500, true))
	if _, err := srv.e.Listen(serverAddr, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.e.Connect(clientAddr, serverAddr); err != nil {
		t.Fatal(err)
	}
	syn := cli.take()[0]
	if syn.Segment.Flags&(FlagECE|FlagCWR) != 0 {
		t.Fatalf("ecn=2 SYN asks for ECN: %v", syn.Segment.Flags)
	}
	if _, err := asker.e.Connect(clientAddr, serverAddr); err != nil {
		t.Fatal(err)
	}
	srv.deliver(asker.take()[0])
	if sa := srv.take()[0]; sa.Segment.Flags&(FlagECE|FlagCWR) != FlagECE {
		t.Fatalf("ecn=2 SYN,ACK to an ECN-setup SYN: %v, want ECE", sa.Segment.Flags)
	}
}

func withRecovery(cfg Config, r Recovery) Config {
	cfg.Recovery = r
	return cfg
}

func countCode(r Ready, code Code) int {
	n := 0
	for _, x := range r.Explanations {
		if x.Code == code {
			n++
		}
	}
	return n
}

// SetIPECN marks a packet the engine built, IPv4 (checksum kept valid) and
// IPv6, and IPECN reads it back.
func TestSetIPECN(t *testing.T) {
	for _, src := range []string{"10.0.0.2", "2001:db8::2"} {
		for _, ecn := range []uint8{ecnCE, ecnECT0, 1, ecnNotECT} {
			a, b := netip.MustParseAddr(src), netip.MustParseAddr(src).Next()
			pkt := AppendPacket(nil, a, b, &Segment{SrcPort: 1, DstPort: 2, Flags: FlagACK, Payload: []byte("x")})
			SetIPECN(pkt, ecn)
			if got := IPECN(pkt); got != ecn {
				t.Errorf("%s: ECN %d, want %d", src, got, ecn)
			}
			if _, _, _, err := ParsePacket(pkt); err != nil {
				t.Errorf("%s ECN %d: %v", src, ecn, err)
			}
		}
	}
}

// completeHandshake hands the client its SYN,ACK, the server the client's
// answer, and returns the connection the server accepts.
func completeHandshake(t *testing.T, cli, srv *side, synAck Packet, lid EndpointID) EndpointID {
	t.Helper()
	cli.deliver(synAck)
	for _, p := range cli.take() {
		srv.deliver(p)
	}
	s, err := srv.e.Accept(lid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
