package fsm

import (
	"sort"
	"strings"
	"testing"
	"time"
)

// RACK-TLP exchanges (RFC 8985) on a timed link: each packet takes
// oneWay to cross, the clock advances to the next arrival or timer, and
// drop decides which data segments the link loses.

type timedPkt struct {
	at  time.Duration
	n   int
	toS bool
	p   Packet
}

type timedLink struct {
	t        *testing.T
	cli, srv *side
	now      time.Duration
	oneWay   time.Duration
	q        []timedPkt
	n        int
	drop     func(p Packet, copyNo int) bool // copyNo: 1 for the first transmission of that SEG.SEQ
	copies   map[Seq]int
	codes    map[Code]int  // the client's explanations so far
	xs       []Explanation // and the explanations themselves
	fifo     bool          // a shorter oneWay never lets a packet overtake one sent before it
	last     [2]time.Duration
	srvCodes map[Code]int                             // the server's explanations so far
	delay    func(p Packet, copyNo int) time.Duration // extra one-way delay of a data segment (nil: none)
	dropAck  func(p Packet) bool                      // the link loses this segment from the server (nil: none)
}

func newTimedLink(t *testing.T, cliCfg, srvCfg Config, oneWay time.Duration) (*timedLink, EndpointID, EndpointID) {
	l := &timedLink{t: t, cli: newSide(t, "client", cliCfg), srv: newSide(t, "server", srvCfg), oneWay: oneWay,
		copies: map[Seq]int{}, codes: map[Code]int{}, srvCodes: map[Code]int{}, drop: func(Packet, int) bool { return false }}
	lid, err := l.srv.e.Listen(serverAddr, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.cli.e.Connect(clientAddr, serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	l.run(10 * oneWay)
	s, err := l.srv.e.Accept(lid)
	if err != nil {
		t.Fatal(err)
	}
	return l, c, s
}

// run moves packets and fires timers until the clock reaches until.
func (l *timedLink) run(until time.Duration) {
	l.t.Helper()
	for steps := 0; steps < 100000; steps++ {
		l.collect()
		next := until
		if len(l.q) > 0 && l.q[0].at < next {
			next = l.q[0].at
		}
		for _, s := range []*side{l.cli, l.srv} {
			if d, ok := s.e.NextDeadline(); ok && d < next {
				next = d
			}
		}
		if next > until {
			return
		}
		l.now = max(l.now, next)
		l.cli.e.AdvanceTo(l.now)
		l.srv.e.AdvanceTo(l.now)
		l.collect()
		for len(l.q) > 0 && l.q[0].at <= l.now {
			p := l.q[0]
			l.q = l.q[1:]
			if p.toS {
				l.srv.deliver(p.p)
			} else {
				l.cli.deliver(p.p)
			}
			l.collect()
		}
		if l.now >= until {
			return
		}
	}
	l.t.Fatal("timedLink: too many steps")
}

func (l *timedLink) collect() {
	for _, x := range l.cli.collect().Explanations {
		l.codes[x.Code]++
		l.xs = append(l.xs, x)
	}
	for _, x := range l.srv.collect().Explanations {
		l.srvCodes[x.Code]++
	}
	for _, s := range []*side{l.cli, l.srv} {
		for _, p := range s.out {
			toS := s == l.cli
			if toS && len(p.Segment.Payload) > 0 {
				l.copies[p.Segment.Seq]++
				if l.drop(p, l.copies[p.Segment.Seq]) {
					continue
				}
			}
			if !toS && l.dropAck != nil && l.dropAck(p) {
				continue
			}
			l.n++
			at := l.now + l.oneWay
			if toS && l.delay != nil && len(p.Segment.Payload) > 0 {
				at += l.delay(p, l.copies[p.Segment.Seq])
			}
			if l.fifo {
				at = max(at, l.last[b2i(toS)])
				l.last[b2i(toS)] = at
			}
			l.q = append(l.q, timedPkt{at: at, n: l.n, toS: toS, p: p})
		}
		s.out = nil
	}
	sort.Slice(l.q, func(i, j int) bool { return l.q[i].at < l.q[j].at || (l.q[i].at == l.q[j].at && l.q[i].n < l.q[j].n) })
}

// TestTLPRepairsTailLoss: the last of five segments is lost, so no ACK
// follows it and no duplicate ACKs can come. Without TLP the sender waits
// for the RTO (1 s); with it, the probe timeout, 2·SRTT (SRTT 20 ms) plus
// WCDelAckT (200 ms, one segment in flight), fires first and resends the
// last segment, which the receiver takes: no RTO at all.
// Reference: RFC 8985 §7.2, §7.3.
func TestTLPRepairsTailLoss(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noTLP    bool
		repaired time.Duration // when SND.UNA reaches the end, after the write
		probes   int
		rtos     int
	}{
		{"tlp", false, 280 * time.Millisecond, 1, 0},      // PTO at 20 + 240 ms, its ACK 20 ms later
		{"rto only", true, 1040 * time.Millisecond, 0, 1}, // RTO at 20 + 1000 ms
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lossConfig(100)
			cfg.Recovery.NoTLP = tc.noTLP
			l, c, _ := newTimedLink(t, cfg, lossConfig(300), 10*time.Millisecond)
			start := l.now
			l.drop = func(p Packet, copyNo int) bool { return p.Segment.Seq == 501 && copyNo == 1 }
			mustSend(t, l.cli, c, strings.Repeat("z", 500))
			l.run(start + tc.repaired - time.Millisecond)
			if in, _ := l.cli.e.Endpoint(c); in.SndUna == 601 {
				t.Fatalf("repaired before %v", tc.repaired)
			}
			l.run(start + tc.repaired)
			if in, _ := l.cli.e.Endpoint(c); in.SndUna != 601 {
				t.Fatalf("SND.UNA %d at %v, want 601", in.SndUna, tc.repaired)
			}
			if l.codes[CodeTLPProbe] != tc.probes || l.codes[CodeRetransmitTimeout] != tc.rtos {
				t.Fatalf("%d probes and %d RTOs, want %d and %d", l.codes[CodeTLPProbe], l.codes[CodeRetransmitTimeout], tc.probes, tc.rtos)
			}
		})
	}
}

// TestRACKLostRetransmission: the first segment is lost and so is its
// fast retransmission. RFC 6675 alone never resends a range twice in one
// recovery (HighRxt), so only the RTO repairs it; RACK sees segments sent
// after the retransmission delivered, marks it lost again once RACK.rtt
// has passed, and resends it within the recovery.
// Reference: RFC 8985 §6.2 step 5, RFC 6675 §4 NextSeg() (1).
func TestRACKLostRetransmission(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noRACK bool
		rtos   int
	}{
		{"rack", false, 0},
		{"dupthresh only", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lossConfig(100)
			cfg.Recovery.NoRACK, cfg.Recovery.NoTLP = tc.noRACK, tc.noRACK
			l, c, s := newTimedLink(t, cfg, lossConfig(300), 10*time.Millisecond)
			l.drop = func(p Packet, copyNo int) bool { return p.Segment.Seq == 101 && copyNo <= 2 }
			mustSend(t, l.cli, c, strings.Repeat("r", 3000))
			l.run(l.now + 3*time.Second)
			in, _ := l.cli.e.Endpoint(c)
			if in.SndUna != 3101 {
				t.Fatalf("SND.UNA %d, want 3101", in.SndUna)
			}
			if l.codes[CodeRetransmitTimeout] != tc.rtos || l.copies[101] != 3 {
				t.Fatalf("%d RTOs, 101 sent %d times; want %d RTOs and 3 copies", l.codes[CodeRetransmitTimeout], l.copies[101], tc.rtos)
			}
			if !tc.noRACK && l.codes[CodeRACKLost] < 2 {
				t.Fatalf("RACK_LOST %d times, want the original and the retransmission", l.codes[CodeRACKLost])
			}
			mustRead(t, l.srv, s, strings.Repeat("r", 3000))
		})
	}
}

// TestSACKTimesDataSentOnce: while the first segment is lost SND.UNA
// cannot move, so no ACK gives an RFC 6298 sample from the timestamps
// (RFC 7323 §4.1 keeps those to ACKs that advance SND.UNA); each ACK that
// SACKs a segment sent once still times it, 20 ms on this path, and the
// retransmission, which Karn's algorithm excludes, is never timed.
// Reference: RFC 6298 §3, RFC 7323 §4.1.
func TestSACKTimesDataSentOnce(t *testing.T) {
	l, c, _ := newTimedLink(t, lossConfig(100), lossConfig(300), 10*time.Millisecond)
	l.drop = func(p Packet, copyNo int) bool { return p.Segment.Seq == 101 && copyNo == 1 }
	mustSend(t, l.cli, c, strings.Repeat("s", 1000))
	l.run(l.now + time.Second)
	n := 0
	for _, x := range l.xs {
		if x.Code == CodeRTTSampleSACK {
			n++
			if v, _ := x.Field("RTT.MS"); v != 20 {
				t.Fatalf("SACK RTT sample %d ms, want 20: %s", v, x.String())
			}
		}
	}
	if n != 9 {
		t.Fatalf("%d SACK RTT samples, want one per SACKed segment (9)", n)
	}
	if in, _ := l.cli.e.Endpoint(c); in.SndUna != 1101 || in.SRTT != 20*time.Millisecond {
		t.Fatalf("SND.UNA %d SRTT %v, want 1101 and 20ms", in.SndUna, in.SRTT)
	}
}

// TestSACKSampleIsTheLongest: when one ACK newly SACKs several segments
// sent at different times, the RFC 6298 sample is the one sent first, the
// longest (as Linux's tcp_clean_rtx_queue takes its first_sackt), so that
// a segment that overtook the others cannot pull SRTT below the path's
// round trip; RACK keeps the latest-sent one for RACK.rtt (RFC 8985 §6.2).
//
//	t=0    A(101) lost, B(201), C(301) sent
//	t=5    D(401) sent
//	t=10   B, C arrive: their ACKs (SACK 201-301, 201-401) are lost
//	t=15   D arrives: ACK 101, SACK 201-501
//	t=25   the ACK newly SACKs B, C (sent at 0) and D (at 5): sample 25 ms
func TestSACKSampleIsTheLongest(t *testing.T) {
	l, c, _ := newTimedLink(t, lossConfig(100), lossConfig(300), 10*time.Millisecond)
	l.drop = func(p Packet, copyNo int) bool { return p.Segment.Seq == 101 && copyNo == 1 }
	l.dropAck = func(p Packet) bool {
		o := p.Segment.Options
		return o.NumSACK > 0 && (o.SACK[0].End == 301 || o.SACK[0].End == 401)
	}
	start := l.now
	mustSend(t, l.cli, c, strings.Repeat("s", 300))
	l.run(start + 5*time.Millisecond)
	mustSend(t, l.cli, c, strings.Repeat("s", 100))
	l.run(start + 26*time.Millisecond)
	for _, x := range l.xs {
		if x.Code == CodeRTTSampleSACK {
			if v, _ := x.Field("RTT.MS"); v != 25 {
				t.Fatalf("SACK RTT sample %d ms, want 25 (B and C, sent first): %s", v, x.String())
			}
			return
		}
	}
	t.Fatal("no SACK RTT sample")
}

// TestEifelUndoesSpuriousRTO: the path's delay jumps from 10 ms to 400 ms
// each way while ten segments are in flight, so the 200 ms RTO expires
// although nothing was lost. The first ACK after the retransmission
// echoes the original transmission's timestamp, older than the
// retransmission's: the timeout was spurious. The sender undoes its
// congestion response (ssthresh back to the FlightSize before it, cwnd to
// FlightSize + min(acked, IW)) and does not go back N: nothing but the
// first segment is sent twice. Without Eifel every segment is resent.
// Reference: RFC 3522 §2, RFC 4015 §2.
func TestEifelUndoesSpuriousRTO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		noEifel bool
		copies  int // transmissions of the last segment
	}{
		{"eifel", false, 1},
		{"no eifel", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lossConfig(100)
			cfg.NoTimestamps = false
			cfg.MinRTO = 200 * time.Millisecond
			cfg.Recovery.NoTLP = true // let the RTO, not a probe, fire first
			cfg.Recovery.NoEifel = tc.noEifel
			srvCfg := lossConfig(300)
			srvCfg.NoTimestamps = false
			l, c, _ := newTimedLink(t, cfg, srvCfg, 10*time.Millisecond)
			mustSend(t, l.cli, c, strings.Repeat("e", 880)) // ten 88-byte segments (MSS 100 less timestamps)
			l.oneWay = 400 * time.Millisecond
			l.run(l.now + 5*time.Second)
			if in, _ := l.cli.e.Endpoint(c); in.SndUna != 981 {
				t.Fatalf("SND.UNA %d, want 981", in.SndUna)
			}
			if l.codes[CodeRetransmitTimeout] == 0 {
				t.Fatal("the RTO never fired")
			}
			if got := l.codes[CodeSpuriousRTO]; (got == 1) == tc.noEifel {
				t.Fatalf("%d SPURIOUS_RTO explanations", got)
			}
			if got := l.copies[893]; got != tc.copies {
				t.Fatalf("the last segment was sent %d times, want %d", got, tc.copies)
			}
		})
	}
}
