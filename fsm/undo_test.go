package fsm

import (
	"fmt"
	"testing"
	"time"
)

// TestSimulatedLinkReorderUndo is issue 11's reordering cell on the
// simulated link (20 ms RTT, 5 % loss, 10 % of segments reordered): the
// Eifel response to a spurious fast retransmit may give back only the
// cwnd and ssthresh from before the reduction, so cwnd stays near what
// the bottleneck and the loss allow and the sender resends little more
// than it loses. Two kinds of reordering: 10 % held back 20 ms, and
// netem's (every segment 20 ms more, the reordered 10 % at once, so their
// RTT samples are short).
func TestSimulatedLinkReorderUndo(t *testing.T) {
	for _, name := range []string{"sack+prr+rack-tlp, reno", "cubic+sack+prr+rack-tlp (default)"} {
		a := simAlgoNamed(t, name)
		for _, link := range []simLink{{loss: 0.05, reorder: 0.10}, {loss: 0.05, reorder: 0.10, jump: true}} {
			t.Run(fmt.Sprintf("%s/jump=%v", a.name, link.jump), func(t *testing.T) {
				for seed := uint64(1); seed <= 3; seed++ {
					g, ev, st := simRunLink(t, a, link, seed, 10*time.Second)
					share := float64(st.resent) / float64(max(st.sent, 1))
					srtt := st.srttSum / time.Duration(max(st.samples, 1))
					t.Logf("seed %d: goodput %.2f MB/s, max cwnd %d segments, resent %.1f %% of %d bytes, mean SRTT %v, spurious fast retransmits %d",
						seed, g/1e6, st.maxCwnd/1448, 100*share, st.sent, srtt.Round(time.Millisecond), ev[CodeSpuriousFastRetransmit])
					// (With netem's reordering the RTT is 40 ms, and a slow
					// start after a timeout may pass 40 segments.)
					if !link.jump && st.maxCwnd > 40*1448 {
						t.Errorf("seed %d: max cwnd %d segments; with 5 %% loss it should stay well under 40", seed, st.maxCwnd/1448)
					}
					if share > 0.15 {
						t.Errorf("seed %d: resent %.1f %% of what was sent; the link loses 5 %%", seed, 100*share)
					}
					if srtt < simRTT {
						t.Errorf("seed %d: mean SRTT %v below the link's %v", seed, srtt, simRTT)
					}
				}
			})
		}
	}
}

// simAlgoNamed is the simAlgos entry called name.
func simAlgoNamed(t *testing.T, name string) simAlgo {
	for _, a := range simAlgos {
		if a.name == name {
			return a
		}
	}
	t.Fatalf("no simulated-link configuration %q", name)
	return simAlgo{}
}

// TestSpuriousRTOResponseBounded: the Eifel response to a spurious
// timeout (RFC 4015 §2) restores cwnd from FlightSize, which with SACK
// counts data the receiver already holds. Under reordering that is many
// windows; the restored window may grow by min(acked, IW) over the one
// before the timeout (pipe_prev), never to FlightSize.
//
//	before the RTO: cwnd 10 segments, SND.NXT - SND.UNA 200 segments (190 SACKed)
//	spurious, 1 segment acked: cwnd 11 segments, ssthresh 10 (not 201)
func TestSpuriousRTOResponseBounded(t *testing.T) {
	const mss = 1000
	cfg := fixedConfig(100)
	cfg.MSS = mss
	e := New(cfg)
	c := &conn{sndMSS: mss, rcvMSS: mss}
	c.sndUna, c.sndNxt = 1, Seq(1+200*mss)
	c.cwnd, c.ssthresh = 10*mss, 1<<31-1
	pipePrev := pipePrevAtTimeout(c) // as eifelOnTimeout and frtoOnTimeout take it
	c.cwnd = mss                     // the timeout's reduction
	e.spuriousRTOResponse(c, c.sndUna.Add(mss), mss, pipePrev)
	if c.ssthresh != 10*mss || c.cwnd != 11*mss {
		t.Fatalf("after the response ssthresh %d, cwnd %d; want %d, %d (pipe_prev 10 segments + 1 acked)", c.ssthresh, c.cwnd, 10*mss, 11*mss)
	}
}
