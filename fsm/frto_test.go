package fsm

import (
	"strings"
	"testing"
	"time"
)

// F-RTO exchanges (RFC 5682) on the timed link of rack_test.go: MSS 100,
// no timestamps (so Eifel detection cannot help), immediate ACKs, a 200 ms
// minimum RTO and no tail loss probe, so the RTO fires first. Data starts
// at 101 and the initial window is ten segments (1000 bytes).

func frtoConfig(isn uint32, frto, noSACK bool) Config {
	cfg := lossConfig(isn)
	cfg.MinRTO = 200 * time.Millisecond
	cfg.Recovery.NoTLP = true
	cfg.Recovery.FRTO = frto
	cfg.Recovery.NoSACKRecovery = noSACK
	return cfg
}

// frtoExplanation returns the client's first explanation with code.
func frtoExplanation(t *testing.T, l *timedLink, code Code) Explanation {
	t.Helper()
	for _, x := range l.xs {
		if x.Code == code {
			return x
		}
	}
	t.Fatalf("no %s explanation", code)
	return Explanation{}
}

func frtoField(t *testing.T, x Explanation, name string) uint64 {
	t.Helper()
	v, ok := x.Field(name)
	if !ok {
		t.Fatalf("%s has no %s: %s", x.Code, name, x.String())
	}
	return v
}

// TestFRTOSpuriousTimeout: ten segments (101..1100) are in flight when the
// path's delay jumps from 10 ms to 150 ms each way. Nothing is lost, but
// the 200 ms RTO expires before the first ACK (300 ms) and 101 is sent
// again (step 1); the spike ends after that exchange. The delayed ACK of 201 is the first ACK after the
// timeout: it advances SND.UNA, so instead of going back N the sender
// sends two new segments, 1101 and 1201 (step 2b). The next delayed ACK,
// 301, acknowledges data sent only before the timeout: the timeout was
// spurious (step 3b) and the Eifel response restores ssthresh to
// pipe_prev (the 1000 bytes in flight at the timeout) and sets cwnd to
// FlightSize + min(acked, IW). Only 101 is ever sent twice. Without F-RTO
// the sender goes back N and resends what the delayed ACKs were about to
// acknowledge. Both variants: SACK-enhanced (§3) and basic (§2.1).
// Reference: RFC 5682 §2.1, §3; RFC 4015 §2.
func TestFRTOSpuriousTimeout(t *testing.T) {
	for _, tc := range []struct {
		name         string
		frto, noSACK bool
		variant      uint64
	}{
		{"sack-enhanced", true, false, 1},
		{"basic", true, true, 0},
		{"off", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c, s := newTimedLink(t, frtoConfig(100, tc.frto, tc.noSACK), lossConfig(300), 10*time.Millisecond)
			l.fifo = true
			data := strings.Repeat("f", 3000)
			mustSend(t, l.cli, c, data)
			l.oneWay = 150 * time.Millisecond
			l.run(l.now + 310*time.Millisecond) // the RTO at 200 ms, the ACKs at 300 ms
			l.oneWay = 10 * time.Millisecond    // the delay spike ends
			l.run(l.now + 5*time.Second)
			if in, _ := l.cli.e.Endpoint(c); in.SndUna != 3101 {
				t.Fatalf("SND.UNA %d, want 3101", in.SndUna)
			}
			if l.codes[CodeRetransmitTimeout] != 1 {
				t.Fatalf("%d RTOs, want 1", l.codes[CodeRetransmitTimeout])
			}
			resent := 0
			for _, n := range l.copies {
				resent += n - 1
			}
			if !tc.frto {
				if l.codes[CodeFRTOStart] != 0 || resent < 3 {
					t.Fatalf("without F-RTO: %d FRTO_START, %d retransmissions; want 0 and go-back-N", l.codes[CodeFRTOStart], resent)
				}
				mustRead(t, l.srv, s, data)
				return
			}
			if resent != 1 || l.copies[101] != 2 {
				t.Fatalf("%d retransmissions (101 sent %d times), want only 101 resent once", resent, l.copies[101])
			}
			start := frtoExplanation(t, l, CodeFRTOStart)
			if v := frtoField(t, start, "VARIANT"); v != tc.variant {
				t.Fatalf("VARIANT %d, want %d: %s", v, tc.variant, start.String())
			}
			if v := frtoField(t, start, "RECOVER"); v != 1100 {
				t.Fatalf("recover %d, want 1100: %s", v, start.String())
			}
			nd := frtoExplanation(t, l, CodeFRTONewData)
			if ack, rp := frtoField(t, nd, "SEG.ACK"), frtoField(t, nd, "RECOVERY.POINT"); ack != 201 || rp != 1100 {
				t.Fatalf("step 2b on ACK %d with RecoveryPoint %d, want 201 and 1100: %s", ack, rp, nd.String())
			}
			sp := frtoExplanation(t, l, CodeFRTOSpurious)
			// FlightSize after ACK 301: 301..1300 = 1000 bytes, + min(100, IW).
			if ack, ss, cw := frtoField(t, sp, "SEG.ACK"), frtoField(t, sp, "SSTHRESH"), frtoField(t, sp, "CWND"); ack != 301 || ss != 1000 || cw != 1100 {
				t.Fatalf("spurious on ACK %d, ssthresh %d, cwnd %d; want 301, 1000, 1100: %s", ack, ss, cw, sp.String())
			}
			if l.codes[CodeFRTOGenuine] != 0 || l.codes[CodeFRTOConventional] != 0 {
				t.Fatalf("FRTO_RTO_GENUINE %d, FRTO_CONVENTIONAL %d, want none", l.codes[CodeFRTOGenuine], l.codes[CodeFRTOConventional])
			}
			mustRead(t, l.srv, s, data)
		})
	}
}

// TestFRTOGenuineTimeout: the link loses the first transmission of all
// ten segments 101..1100, so the RTO is genuine. The retransmission of
// 101 is acknowledged (ACK 201, step 2b: two new segments 1101 and 1201
// go out); they arrive above the hole at 201, so the next ACK is a
// duplicate of 201 (SACKing 1101..1300, beyond RecoveryPoint 1100): the
// timeout was genuine (step 3a), cwnd drops to at most 3·SMSS and
// conventional RTO recovery resends from 201. With SACK the two new
// segments, already SACKed, are not sent again.
// Reference: RFC 5682 §2.1 (3a), §3 (3a).
func TestFRTOGenuineTimeout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		noSACK bool
	}{
		{"sack-enhanced", false},
		{"basic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, c, s := newTimedLink(t, frtoConfig(100, true, tc.noSACK), lossConfig(300), 10*time.Millisecond)
			l.drop = func(p Packet, copyNo int) bool {
				return copyNo == 1 && p.Segment.Seq.LessThan(1101)
			}
			data := strings.Repeat("g", 3000)
			mustSend(t, l.cli, c, data)
			l.run(l.now + 10*time.Second)
			if in, _ := l.cli.e.Endpoint(c); in.SndUna != 3101 {
				t.Fatalf("SND.UNA %d, want 3101", in.SndUna)
			}
			if l.codes[CodeFRTOSpurious] != 0 || l.codes[CodeSpuriousRTO] != 0 {
				t.Fatalf("a genuine timeout was called spurious")
			}
			nd := frtoExplanation(t, l, CodeFRTONewData)
			if ack := frtoField(t, nd, "SEG.ACK"); ack != 201 {
				t.Fatalf("step 2b on ACK %d, want 201: %s", ack, nd.String())
			}
			g := frtoExplanation(t, l, CodeFRTOGenuine)
			if ack, una, cw := frtoField(t, g, "SEG.ACK"), frtoField(t, g, "SND.UNA"), frtoField(t, g, "CWND"); ack != 201 || una != 201 || cw > 300 {
				t.Fatalf("genuine on ACK %d, SND.UNA %d, cwnd %d; want 201, 201, <= 300: %s", ack, una, cw, g.String())
			}
			if !tc.noSACK {
				if hi := frtoField(t, g, "SACK.HIGH"); hi != 1201 && hi != 1301 {
					t.Fatalf("SACK.HIGH %d, want the new segments SACKed: %s", hi, g.String())
				}
				if l.copies[1101] != 1 || l.copies[1201] != 1 {
					t.Fatalf("new segments sent %d and %d times, want once (SACKed)", l.copies[1101], l.copies[1201])
				}
			}
			for seq := Seq(101); seq < 1101; seq += 100 {
				if l.copies[seq] < 2 {
					t.Fatalf("%d sent %d times, want retransmitted", seq, l.copies[seq])
				}
			}
			mustRead(t, l.srv, s, data)
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFRTONotReentered: as in TestFRTOGenuineTimeout the first window is
// lost, and the timeout's retransmission of 101 is lost too. The second
// timeout comes during RTO recovery (SND.UNA 101 has not passed recover
// 1100), so F-RTO is not entered again (step 1): conventional recovery
// goes on, and the first ACK after it (201) sends no new data.
// Reference: RFC 5682 §2.1 (1).
func TestFRTONotReentered(t *testing.T) {
	l, c, s := newTimedLink(t, frtoConfig(100, true, false), lossConfig(300), 10*time.Millisecond)
	l.drop = func(p Packet, copyNo int) bool {
		return p.Segment.Seq.LessThan(1101) && (copyNo == 1 || p.Segment.Seq == 101 && copyNo == 2)
	}
	data := strings.Repeat("n", 3000)
	mustSend(t, l.cli, c, data)
	l.run(l.now + 20*time.Second)
	if in, _ := l.cli.e.Endpoint(c); in.SndUna != 3101 {
		t.Fatalf("SND.UNA %d, want 3101", in.SndUna)
	}
	if l.codes[CodeFRTOStart] != 1 || l.codes[CodeFRTONotEntered] < 1 {
		t.Fatalf("FRTO_START %d, FRTO_NOT_ENTERED %d; want 1 and at least 1", l.codes[CodeFRTOStart], l.codes[CodeFRTONotEntered])
	}
	x := frtoExplanation(t, l, CodeFRTONotEntered)
	if una, rec := frtoField(t, x, "SND.UNA"), frtoField(t, x, "RECOVER"); una != 101 || rec != 1100 {
		t.Fatalf("not entered at SND.UNA %d, recover %d; want 101, 1100: %s", una, rec, x.String())
	}
	if l.codes[CodeFRTONewData] != 0 || l.codes[CodeFRTOSpurious] != 0 {
		t.Fatalf("FRTO_NEW_DATA %d, FRTO_SPURIOUS_RTO %d; want none", l.codes[CodeFRTONewData], l.codes[CodeFRTOSpurious])
	}
	mustRead(t, l.srv, s, data)
}
