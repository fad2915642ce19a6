package fsm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sackSummary renders an emitted segment with its SACK blocks, in the
// relative numbers of the D-SACK tests (the server's view of the client's
// sequence space, ISN 100, so byte 1 is sequence number 101).
func sackSummary(p Packet) string {
	g := &p.Segment
	s := fmt.Sprintf("ack %d", uint32(g.Ack)-100)
	if g.Options.NumSACK > 0 {
		var b []string
		for _, blk := range g.Options.SACK[:g.Options.NumSACK] {
			b = append(b, fmt.Sprintf("%d:%d", uint32(blk.Start)-100, uint32(blk.End)-100))
		}
		s += " <sack " + strings.Join(b, " ") + ">"
	}
	return s
}

// TestDSACK: with SACK on, a segment carrying data the receiver already has
// is answered at once, and the ACK's first SACK block names the duplicate
// range; when the duplicate lies in data held out of order, the block that
// holds it comes second. Bytes are numbered from 1 as in the client's
// stream (sequence number 101 is byte 1).
//
//	<  1:100            > ack 100
//	<  200:300          > ack 100 <sack 200:300>
//	<  400:500          > ack 100 <sack 400:500 200:300>
//	<  150:350          > ack 100 <sack 200:300 150:350 400:500>   D-SACK 200:300
//	<  250:300          > ack 100 <sack 250:300 150:350 400:500>   D-SACK inside a held block
//	<  50:100           > ack 100 <sack 50:100 150:350 400:500>    D-SACK below RCV.NXT
//	<  1:600            > ack 600 <sack 1:100>                     D-SACK of the part below RCV.NXT
//
// Reference: RFC 2883 §4.1.1, §4.1.2; RFC 2018 §4; RFC 5681 §4.2.
func TestDSACK(t *testing.T) {
	cfg := fixedConfig(300)
	_, srv, _, _ := established(t, fixedConfig(100), cfg)
	if in, _ := srv.e.Endpoint(2); !in.SACKPermitted {
		t.Fatal("SACK not negotiated")
	}
	data := make([]byte, 700)
	for _, step := range []struct {
		from, to int
		want     string
	}{
		{1, 100, "ack 100"},
		{200, 300, "ack 100 <sack 200:300>"},
		{400, 500, "ack 100 <sack 400:500 200:300>"},
		{150, 350, "ack 100 <sack 200:300 150:350 400:500>"},
		{250, 300, "ack 100 <sack 250:300 150:350 400:500>"},
		{50, 100, "ack 100 <sack 50:100 150:350 400:500>"},
		{1, 600, "ack 600 <sack 1:100>"},
	} {
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: Seq(100 + step.from), Ack: 301, Window: 65535, Payload: data[step.from:step.to]})
		srv.collect()
		if len(srv.out) != 1 {
			t.Fatalf("< %d:%d: emitted %d segments, want one ACK at once", step.from, step.to, len(srv.out))
		}
		if got := sackSummary(srv.out[0]); got != step.want {
			t.Fatalf("< %d:%d: > %s, want > %s", step.from, step.to, got, step.want)
		}
		srv.out = nil
	}
}

// TestPartialDuplicateAckedAtOnceWithSACK: with delayed ACKs on, a
// segment that repeats data already received and brings new data is
// answered at once when SACK is on (the D-SACK block must not wait: the
// next in-order ACK would drop it), and delayed as usual without SACK.
// Reference: RFC 2883 §4, RFC 5681 §4.2, RFC 9293 §3.8.6.3.
func TestPartialDuplicateAckedAtOnceWithSACK(t *testing.T) {
	for _, sack := range []bool{true, false} {
		cfg := fixedConfig(300)
		cfg.NoDelayedAck, cfg.NoSACK = false, !sack
		_, srv, _, _ := established(t, fixedConfig(100), cfg)
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 101, Ack: 301, Window: 65535, Payload: []byte("abcd")})
		srv.expectNothing() // delayed
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK, Seq: 103, Ack: 301, Window: 65535, Payload: []byte("cdef")})
		if !sack {
			srv.expectNothing()
			continue
		}
		p := srv.expect(". seq=301 ack=107")
		if got := sackSummary(p); got != "ack 7 <sack 3:5>" {
			t.Fatalf("> %s, want the D-SACK of bytes 3:5", got)
		}
	}
}

// TestSACKCoversHeldFIN: a FIN held above RCV.NXT is reported in the SACK
// blocks under sack_fin=1 (rfc, linux), so a sender that needs the FIN's
// sequence number sacked (Linux cannot split a last segment shorter than
// the MSS from its FIN) does not resend a segment that arrived; under
// sack_fin=0 (freebsd) the blocks cover text only, and the explanation
// names the switch. Bytes are numbered from 1 as in TestDSACK.
//
//	<  1:100              > ack 100
//	<  200:300 FIN        > ack 100 <sack 200:301>      sack_fin=0: <sack 200:300>
//	<  100:200            > ack 301                     (the text and the FIN)
//
// and a FIN alone above a hole:
//
//	<  1:100              > ack 100
//	<  200:300            > ack 100 <sack 200:300>
//	<  FIN at 400         > ack 100 <sack 400:401 200:300>   sack_fin=0: <sack 200:300>
//	<  100:400            > ack 401
//
// Reference: RFC 2018 §3, §4; RFC 9293 §3.4 (the FIN occupies a sequence
// number) and §3.10.7.4 eighth step (a FIN above RCV.NXT is held).
func TestSACKCoversHeldFIN(t *testing.T) {
	type step struct {
		from, to int
		fin      bool
		want     string // sack_fin=1
		wantBSD  string // sack_fin=0
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"FIN on the last segment", []step{
			{1, 100, false, "ack 100", "ack 100"},
			{200, 300, true, "ack 100 <sack 200:301>", "ack 100 <sack 200:300>"},
			{100, 200, false, "ack 301", "ack 301"},
		}},
		{"FIN alone", []step{
			{1, 100, false, "ack 100", "ack 100"},
			{200, 300, false, "ack 100 <sack 200:300>", "ack 100 <sack 200:300>"},
			{400, 400, true, "ack 100 <sack 400:401 200:300>", "ack 100 <sack 200:300>"},
			{100, 400, false, "ack 401", "ack 401"},
		}},
	} {
		for _, sackFin := range []string{"1", "0"} {
			t.Run(tc.name+"/sack_fin="+sackFin, func(t *testing.T) {
				cfg := fixedConfig(300)
				if err := cfg.SetSwitch("sack_fin", sackFin); err != nil {
					t.Fatal(err)
				}
				_, srv, _, _ := established(t, fixedConfig(100), cfg)
				data := make([]byte, 700)
				for _, st := range tc.steps {
					seg := Segment{Flags: FlagACK, Seq: Seq(100 + st.from), Ack: 301, Window: 65535, Payload: data[st.from:st.to]}
					if st.fin {
						seg.Flags |= FlagFIN
					}
					srv.inject(clientAddr, serverAddr, seg)
					r := srv.collect()
					notSacked := 0
					for _, x := range r.Explanations {
						if x.Code == CodeFinNotSACKed {
							notSacked++
						}
					}
					want, wantNotSacked := st.want, 0
					if sackFin == "0" {
						want = st.wantBSD
						if st.fin {
							wantNotSacked = 1
						}
					}
					if len(srv.out) != 1 {
						t.Fatalf("< %d:%d fin=%v: emitted %d segments, want one ACK at once", st.from, st.to, st.fin, len(srv.out))
					}
					if got := sackSummary(srv.out[0]); got != want {
						t.Fatalf("< %d:%d fin=%v: > %s, want > %s", st.from, st.to, st.fin, got, want)
					}
					if notSacked != wantNotSacked {
						t.Fatalf("< %d:%d fin=%v: %d FIN_NOT_SACKED explanations, want %d", st.from, st.to, st.fin, notSacked, wantNotSacked)
					}
					srv.out = nil
				}
			})
		}
	}
}

// TestDuplicateTSvalUnderTSRecentDup: a retransmission overtakes the
// segment sent before it, so a duplicate with a newer TSval arrives first.
// RFC 7323 §5.3 drops the duplicate (R2) before recording its TSval (R3),
// and the older segment after it is taken; Linux takes the duplicate's
// TSval (ts_recent_dup=1), so the older segment fails PAWS and is dropped
// with an ACK. testdata/scripts/paws-overtaken.pkt runs the same exchange
// against the kernel.
func TestDuplicateTSvalUnderTSRecentDup(t *testing.T) {
	for _, tc := range []struct {
		sw                string
		echo              uint32 // TSecr of the duplicate's ACK, above the first TSval
		ackAfter          Seq    // the ACK of the older segment that follows
		fromDuplicateExpl int
	}{
		{"0", 0, 301, 0},
		{"1", 50, 201, 1},
	} {
		t.Run("ts_recent_dup="+tc.sw, func(t *testing.T) {
			ccfg, scfg := fixedConfig(100), fixedConfig(300)
			ccfg.NoTimestamps, scfg.NoTimestamps = false, false
			if err := scfg.SetSwitch("ts_recent_dup", tc.sw); err != nil {
				t.Fatal(err)
			}
			cli, srv, c, _ := established(t, ccfg, scfg)
			data := make([]byte, 100)
			if _, err := cli.e.Send(c, data); err != nil {
				t.Fatal(err)
			}
			first := relay(cli, srv, "P. seq=101 ack=301 len=100").Segment
			srv.e.AdvanceTo(time.Second) // the delayed ACK leaves
			srv.collect()
			srv.out = nil
			ts := first.Options.TSVal
			seg := func(seq Seq, tsval uint32) Segment {
				s := Segment{Flags: FlagACK | FlagPSH, Seq: seq, Ack: 301, Window: 65535, Payload: data}
				s.Options.HasTimestamp, s.Options.TSVal, s.Options.TSEcr = true, tsval, first.Options.TSEcr
				return s
			}
			// < P. 101:201 (the copy, TSval+50): a duplicate, answered at once.
			srv.inject(clientAddr, serverAddr, seg(101, ts+50))
			r := srv.collect()
			n := 0
			for _, x := range r.Explanations {
				if x.Code == CodeTSRecentFromDuplicate {
					n++
				}
			}
			if len(srv.out) != 1 || srv.out[0].Segment.Ack != 201 || srv.out[0].Segment.Options.TSEcr != ts+tc.echo {
				t.Fatalf("> %v, want one ACK of 201 echoing TSecr %d", srv.out, ts+tc.echo)
			}
			if n != tc.fromDuplicateExpl {
				t.Fatalf("%d TS_RECENT_FROM_DUPLICATE explanations, want %d", n, tc.fromDuplicateExpl)
			}
			srv.out = nil
			// < P. 201:301 (sent before the copy, TSval+20).
			srv.inject(clientAddr, serverAddr, seg(201, ts+20))
			srv.e.AdvanceTo(2 * time.Second)
			srv.collect()
			if len(srv.out) == 0 || srv.out[len(srv.out)-1].Segment.Ack != tc.ackAfter {
				t.Fatalf("> %v, want the last ACK to be of %d", srv.out, tc.ackAfter)
			}
		})
	}
}
