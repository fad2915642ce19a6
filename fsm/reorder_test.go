package fsm

import (
	"strings"
	"testing"
	"time"
)

// TestReorderingMistakenForLossUndone: the first of ten segments is held
// back 15 ms on a 10 ms path, so the other nine arrive first and their
// SACKs start loss recovery: 101 is fast-retransmitted and cwnd halved.
// Then the original 101 arrives; the first ACK of new data echoes its
// timestamp, older than the retransmission's, so the retransmit was
// spurious: recovery ends and the reduction is undone (ssthresh =
// pipe_prev, the 880 bytes in flight before it). The retransmission
// arrives as a duplicate, wholly below RCV.NXT, and the receiver answers
// it with an ACK (and a D-SACK). Without Eifel the halved ssthresh stays.
// Reference: RFC 3522 §2, RFC 4015 §2, RFC 9293 §3.10.7.4 first check.
func TestReorderingMistakenForLossUndone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		noEifel  bool
		undone   int
		ssthresh uint32
	}{
		{"eifel", false, 1, 880},
		{"no eifel", true, 0, 440},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := renoConfig(lossConfig(100))
			cfg.NoTimestamps = false
			cfg.Recovery.NoEifel = tc.noEifel
			srvCfg := lossConfig(300)
			srvCfg.NoTimestamps = false
			l, c, s := newTimedLink(t, cfg, srvCfg, 10*time.Millisecond)
			l.delay = func(p Packet, copyNo int) time.Duration {
				if p.Segment.Seq == 101 && copyNo == 1 {
					return 15 * time.Millisecond
				}
				return 0
			}
			mustSend(t, l.cli, c, strings.Repeat("r", 880)) // ten 88-byte segments (MSS 100 less timestamps)
			l.run(l.now + time.Second)
			if in, _ := l.cli.e.Endpoint(c); in.SndUna != 981 {
				t.Fatalf("SND.UNA %d, want 981", in.SndUna)
			}
			if l.codes[CodeSACKRecovery] != 1 || l.copies[101] != 2 {
				t.Fatalf("SACK_RECOVERY %d, 101 sent %d times; want the reordering taken for a loss once", l.codes[CodeSACKRecovery], l.copies[101])
			}
			if got := l.codes[CodeSpuriousFastRetransmit]; got != tc.undone {
				t.Fatalf("SPURIOUS_FAST_RETRANSMIT %d times, want %d", got, tc.undone)
			}
			if tc.undone == 1 {
				x := frtoExplanation(t, l, CodeSpuriousFastRetransmit)
				if v, _ := x.Field("SSTHRESH"); v != uint64(tc.ssthresh) {
					t.Errorf("undo: %s", x.String())
				}
			}
			if in, _ := l.cli.e.Endpoint(c); in.Ssthresh != tc.ssthresh {
				t.Errorf("ssthresh %d, want %d", in.Ssthresh, tc.ssthresh)
			}
			if l.srvCodes[CodeUnacceptableSentAck] != 1 {
				t.Errorf("the receiver answered %d old segments, want the retransmission alone", l.srvCodes[CodeUnacceptableSentAck])
			}
			buf := make([]byte, 1000)
			if n, _ := l.srv.e.Receive(s, buf); n != 880 {
				t.Fatalf("received %d bytes, want 880", n)
			}
		})
	}
}
