package fsm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Loss recovery exchanges (issue 11): a client engine sends, the test
// plays the link, and a real server engine answers with its ACKs and SACK
// blocks. MSS 100 on both sides, no timestamps, immediate ACKs, so the
// numbers read like a textbook: data starts at 101, cwnd is 10 segments.

func lossConfig(isn uint32) Config {
	cfg := fixedConfig(isn)
	cfg.MSS = 100
	return cfg
}

// renoConfig sets RFC 5681's Reno for the tests whose numbers are its
// halving (ssthresh = FlightSize/2); the default is CUBIC's 0.7.
func renoConfig(cfg Config) Config {
	cfg.Recovery.CongestionControl = CCReno
	return cfg
}

// dupThreshConfig is lossConfig with RFC 6675's DupThresh rules alone
// deciding loss (no RACK-TLP), for the tests of those rules.
func dupThreshConfig(isn uint32) Config {
	cfg := lossConfig(isn)
	cfg.Recovery.NoRACK, cfg.Recovery.NoTLP = true, true
	return cfg
}

// codes lists the explanation codes of a batch, for failure messages.
func codes(r Ready) string {
	var out []string
	for _, x := range r.Explanations {
		out = append(out, x.Code.String())
	}
	return strings.Join(out, " ")
}

// take pops every packet s emitted.
func (s *side) take() []Packet {
	s.collect()
	out := s.out
	s.out = nil
	return out
}

// field returns the named field of the first explanation with code in r.
func field(t *testing.T, r Ready, code Code, name string) uint64 {
	t.Helper()
	for _, x := range r.Explanations {
		if x.Code == code {
			v, ok := x.Field(name)
			if !ok {
				t.Fatalf("%s has no %s: %s", code, name, x.String())
			}
			return v
		}
	}
	t.Fatalf("no %s explanation; got %s", code, codes(r))
	return 0
}

// ackBack delivers p to srv and each ACK srv emits to cli, returning the
// client's outputs for the last one.
func ackBack(t *testing.T, cli, srv *side, p Packet) Ready {
	t.Helper()
	srv.deliver(p)
	var r Ready
	for _, a := range srv.take() {
		cli.deliver(a)
		r = cli.collect()
	}
	return r
}

// TestSACKRecoverySingleLoss: ten segments, the first lost. Each later one
// draws a duplicate ACK with a SACK block (RFC 6675 §2); the first two let
// limited transmit send new data while cwnd - pipe >= 1 SMSS (step 3), the
// third starts recovery (step 4): RecoveryPoint = HighData = 1300,
// ssthresh = cwnd = (FlightSize less the 200 bytes of limited transmit)/2
// = 500 and 101 is retransmitted. PRR (RFC 6937 §3, RecoverFS 1200) then
// sends nothing while pipe > ssthresh beyond the proportional share
// (sndcnt 0, 0, 25, 67), and once pipe <= ssthresh one segment per segment
// delivered. The ACK of the retransmission ends recovery with cwnd =
// ssthresh. Reference: RFC 6675 §5, RFC 6937 §3.
func TestSACKRecoverySingleLoss(t *testing.T) {
	cli, srv, c, _ := established(t, renoConfig(dupThreshConfig(100)), dupThreshConfig(300))
	mustSend(t, cli, c, strings.Repeat("x", 3000))
	segs := cli.take()
	if len(segs) != 10 {
		t.Fatalf("initial window sent %d segments, want 10", len(segs))
	}
	// segs[0] (101) is lost.
	r := ackBack(t, cli, srv, segs[1])
	if v := field(t, r, CodeAckSACKed, "PIPE"); v != 900 {
		t.Fatalf("pipe %d after the first SACK, want 900", v)
	}
	cli.expect(". seq=1101 ack=301 len=100") // limited transmit
	ackBack(t, cli, srv, segs[2])
	cli.expect(". seq=1201 ack=301 len=100")
	r = ackBack(t, cli, srv, segs[3])
	for name, want := range map[string]uint64{"DUPACKS": 3, "RECOVERY.POINT": 1300, "SSTHRESH": 500, "FLIGHT": 1000, "SEG.SEQ": 101} {
		if v := field(t, r, CodeSACKRecovery, name); v != want {
			t.Fatalf("SACK_RECOVERY %s = %d, want %d", name, v, want)
		}
	}
	cli.expect(". seq=101 ack=301 len=100") // the fast retransmit
	cli.expectNothing()
	for i, want := range []uint64{0, 25, 67, 0, 100, 100} {
		r = ackBack(t, cli, srv, segs[4+i])
		if v := field(t, r, CodePRR, "SNDCNT"); v != want {
			t.Fatalf("ACK %d: sndcnt %d, want %d (%s)", 4+i, v, want, codes(r))
		}
		if want >= 100 {
			if field(t, r, CodeSACKNextSeg, "RULE") != 2 {
				t.Fatal("PRR's segment is not new data")
			}
			cli.expect(fmt.Sprintf(". seq=%d ack=301 len=100", 1301+100*(i-4)))
		}
		cli.expectNothing()
	}
	// The retransmission and the rest arrive: 101..1300 is acknowledged.
	cli.take()
	seq101 := Segment{Flags: FlagACK, Seq: 301, Ack: 1301, Window: 65535}
	cli.inject(serverAddr, clientAddr, seq101)
	r = cli.collect()
	if v := field(t, r, CodeSACKRecoveryDone, "CWND"); v != 500 {
		t.Fatalf("cwnd %d at the end of recovery, want ssthresh 500", v)
	}
}

// TestSACKRecoveryBurst: three segments in a row are lost. One SACK
// recovery repairs all three before any retransmission timeout: after the
// fast retransmit of 101, NextSeg rule 1 picks 201 and 301 (unSACKed,
// above HighRxt, IsLost) as PRR allows.
// Reference: RFC 6675 §4 NextSeg() (1), §5 (C).
func TestSACKRecoveryBurst(t *testing.T) {
	cli, srv, c, s := established(t, dupThreshConfig(100), dupThreshConfig(300))
	mustSend(t, cli, c, strings.Repeat("y", 1000))
	rtx := fifoLink(t, cli, srv, func(p Packet, first bool) bool { return first && p.Segment.Seq.LessThan(401) })
	// After the ACK of 201's retransmission HighACK passes RescueRxt
	// (200, the end of the fast retransmit) while 301's retransmission is
	// still in flight and nothing else is left: rule 4 sends its one rescue
	// retransmission of the highest unSACKed segment, as RFC 6675 says.
	want := []string{". seq=101 ack=301 len=100", ". seq=201 ack=301 len=100", ". seq=301 ack=301 len=100", ". seq=301 ack=301 len=100"}
	if strings.Join(rtx, "|") != strings.Join(want, "|") {
		t.Fatalf("retransmitted %v, want %v", rtx, want)
	}
	in, _ := cli.e.Endpoint(c)
	if in.SndUna != 1101 || len(in.Timers) != 0 {
		t.Fatalf("SND.UNA %d timers %v, want everything acknowledged", in.SndUna, in.Timers)
	}
	mustRead(t, srv, s, strings.Repeat("y", 1000))
}

// fifoLink runs the client's segments through a first-in first-out link
// to the server (ACKs come straight back) until the client is quiet,
// dropping those drop names (first: not seen before). It returns the
// client's retransmissions in order.
func fifoLink(t *testing.T, cli, srv *side, drop func(p Packet, first bool) bool) []string {
	t.Helper()
	seen := map[Seq]bool{}
	var queue []Packet
	var rtx []string
	for steps := 0; steps < 10000; steps++ {
		for _, p := range cli.take() {
			if len(p.Segment.Payload) > 0 && seen[p.Segment.Seq] {
				rtx = append(rtx, segSummary(&p.Segment))
			}
			queue = append(queue, p)
		}
		if len(queue) == 0 {
			return rtx
		}
		p := queue[0]
		queue = queue[1:]
		first := !seen[p.Segment.Seq]
		seen[p.Segment.Seq] = true
		if drop(p, first) {
			continue
		}
		srv.deliver(p)
		for _, a := range srv.take() {
			cli.deliver(a)
		}
	}
	t.Fatal("fifoLink: no quiescence")
	return nil
}

// TestLimitedTransmitIsPastCwnd: a stretch ACK acknowledges five of ten
// segments and SACKs the seventh (the sixth, 601, is lost). The new data
// it releases up to SND.UNA + cwnd (601 + 1100 after slow start's growth)
// is ordinary transmission; only the one segment past it is limited
// transmit (RFC 5681 §3.2, RFC 3042 §2: "beyond the congestion window"),
// as is the one the next duplicate ACK sends. At the third FlightSize is
// 1300 less those 200 octets: ssthresh 550, half of cwnd, where counting
// every segment sent on a SACK as limited transmit left 500 and ssthresh
// 250.
// Reference: RFC 5681 §3.2 step 2 and (4), RFC 6675 §5 (3), (4.2).
func TestLimitedTransmitIsPastCwnd(t *testing.T) {
	cli, _, c, _ := established(t, renoConfig(dupThreshConfig(100)), dupThreshConfig(300))
	mustSend(t, cli, c, strings.Repeat("x", 5000))
	if n := len(cli.take()); n != 10 {
		t.Fatalf("initial window sent %d segments, want 10", n)
	}
	sack := func(ack, end Seq) Ready {
		seg := Segment{Flags: FlagACK, Seq: 301, Ack: ack, Window: 65535}
		seg.Options.NumSACK, seg.Options.SACK[0] = 1, SACKBlock{701, end}
		cli.inject(serverAddr, clientAddr, seg)
		return cli.collect()
	}
	sack(601, 801)
	for seq := 1101; seq < 1801; seq += 100 {
		cli.expect(fmt.Sprintf(". seq=%d ack=301 len=100", seq))
	}
	cli.expectNothing()
	sack(601, 901)
	cli.expect(". seq=1801 ack=301 len=100")
	r := sack(601, 1001)
	for name, want := range map[string]uint64{"DUPACKS": 3, "FLIGHT": 1100, "SSTHRESH": 550} {
		if v := field(t, r, CodeSACKRecovery, name); v != want {
			t.Fatalf("SACK_RECOVERY %s = %d, want %d", name, v, want)
		}
	}
}

// TestRTOKeepSACK: ten segments 101..1100, of which 101, 301, 501, 701 and
// 901 are lost; the duplicate ACKs SACK the other five, the last one with
// its four most recent blocks; the repairs sent in recovery are lost too,
// and the retransmission timer expires. The timeout resends 101 (going
// back N, cwnd one segment), and the receiver's ACK of it, 301, carries
// the three blocks it has room for after that: 1001-1101, 801-901,
// 601-701. Under rto_keep_sack (linux) the board still holds 401-501: the
// ACK SACKs nothing new, cwnd is two segments, and SACKed data takes none
// of it, so the sender resends the holes 301 and 501. With the board
// cleared (rfc, RFC 2018 §8) the ACK's blocks are news, so it also counts
// as a duplicate ACK (RFC 6675 §2) whose limited transmit sends more, and
// going back N resends 401, which the receiver holds. A board whose first
// block starts at SND.UNA (the receiver reneged) is cleared either way.
// Reference: RFC 2018 §8, RFC 6675 §2, §5.1.
func TestRTOKeepSACK(t *testing.T) {
	sack := func(ack Seq, blocks ...Seq) Segment {
		seg := Segment{Flags: FlagACK, Seq: 301, Ack: ack, Window: 65535}
		for i := 0; i < len(blocks); i += 2 {
			seg.Options.SACK[i/2] = SACKBlock{Start: blocks[i], End: blocks[i+1]}
		}
		seg.Options.NumSACK = uint8(len(blocks) / 2)
		return seg
	}
	for _, tc := range []struct {
		name       string
		keep       bool
		reneged    bool
		code       Code
		resent     []Seq // what the ACK of 301 lets the sender send
		wantBlocks uint64
	}{
		{"rfc clears the board", false, false, CodeSACKScoreboardCleared, []Seq{301, 401, 501, 701, 901}, 5},
		{"rto_keep_sack keeps it", true, false, CodeSACKScoreboardKept, []Seq{301, 501}, 5},
		{"a reneging receiver: cleared", true, true, CodeSACKScoreboardCleared, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dupThreshConfig(100)
			cfg.Recovery.RTOKeepSACK = tc.keep
			cli, _, c, _ := established(t, cfg, dupThreshConfig(300))
			mustSend(t, cli, c, strings.Repeat("x", 1000))
			if n := len(cli.take()); n != 10 {
				t.Fatalf("initial window sent %d segments, want 10", n)
			}
			acks := []Segment{
				sack(101, 201, 301),
				sack(101, 401, 501, 201, 301),
				sack(101, 601, 701, 401, 501, 201, 301),
				sack(101, 801, 901, 601, 701, 401, 501, 201, 301),
				sack(101, 1001, 1101, 801, 901, 601, 701, 401, 501),
			}
			if tc.reneged {
				// The receiver SACKed 101 (SND.UNA) and did not ACK it.
				acks = append(acks, sack(101, 101, 201, 1001, 1101, 801, 901, 601, 701))
			}
			for _, a := range acks {
				cli.inject(serverAddr, clientAddr, a)
			}
			cli.take() // the repairs of recovery: all lost
			var r Ready
			for at := time.Second; at <= 4*time.Second && len(r.Explanations) == 0; at += 10 * time.Millisecond {
				cli.e.AdvanceTo(at)
				r = cli.collect()
			}
			if got := field(t, r, tc.code, "BLOCKS"); tc.wantBlocks != 0 && got != tc.wantBlocks {
				t.Fatalf("%s BLOCKS %d, want %d", tc.code, got, tc.wantBlocks)
			}
			cli.expect(". seq=101 ack=301 len=100") // going back N
			cli.expectNothing()
			if tc.reneged {
				return
			}
			cli.inject(serverAddr, clientAddr, sack(301, 1001, 1101, 801, 901, 601, 701))
			var sent []Seq
			for _, p := range cli.take() {
				sent = append(sent, p.Segment.Seq)
			}
			if fmt.Sprint(sent) != fmt.Sprint(tc.resent) {
				t.Fatalf("after the ACK of 301 the sender sent %v, want %v", sent, tc.resent)
			}
		})
	}
}
