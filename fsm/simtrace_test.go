package fsm

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSimTrace is a study aid (TCPSTATED_SIM_TRACE=1): one seeded run of
// each named configuration over the simulated link, printing goodput, the
// time-weighted mean cwnd in segments, and with TCPSTATED_SIM_TRACE=2 the
// congestion decisions of the first seconds.
func TestSimTrace(t *testing.T) {
	lvl := os.Getenv("TCPSTATED_SIM_TRACE")
	if lvl == "" {
		t.Skip("TCPSTATED_SIM_TRACE not set")
	}
	if lvl == "table" {
		// The bench-loss-sim table without writing the docs.
		tab := simTable(t)
		for _, p := range simLosses {
			line := fmt.Sprintf("%g %%:", p*100)
			for _, a := range simAlgos {
				c := tab[a.name][p]
				line += fmt.Sprintf(" | %s %.2f (%d/%d/%d)", a.name, c.goodput/1e6, c.events[CodeFastRetransmit]+c.events[CodeSACKRecovery],
					c.events[CodeSACKNextSeg], c.events[CodeRetransmitTimeout])
			}
			fmt.Println(line)
		}
		return
	}
	loss := 0.01
	if v, err := strconv.ParseFloat(os.Getenv("TCPSTATED_SIM_LOSS"), 64); err == nil {
		loss = v
	}
	dur := 30 * time.Second
	for _, a := range simAlgos {
		if a.name != "sack+prr+rack-tlp (default)" && a.name != "cubic" {
			continue
		}
		for seed := uint64(1); seed <= 3; seed++ {
			if lvl == "2" && seed == 1 {
				simTrace = func(now time.Duration, x Explanation) {
					if now > 3*time.Second {
						return
					}
					switch x.Code {
					case CodeSACKNextSeg, CodeAckSACKed:
						return
					}
					s := fmt.Sprintf("%8.3f %-28s", now.Seconds(), x.Code.String())
					for _, f := range x.Fields[:x.NFields] {
						s += fmt.Sprintf(" %s=%d", f.Name, f.Value)
					}
					fmt.Println(s)
				}
			} else {
				simTrace = nil
			}
			g, ev, st := simRunLink(t, a, simLink{loss: loss}, seed, dur)
			mean := st.cwndArea / st.lastAt.Seconds() / 1448
			fmt.Printf("%-30s seed %d loss %.3f: %.3f MB/s, mean cwnd %.2f seg, srtt %.1f ms, recoveries %d, RTO %d, TLP %d\n", a.name, seed, loss, g/1e6, mean,
				st.srttArea/st.lastAt.Seconds(), ev[CodeSACKRecovery]+ev[CodeFastRetransmit], ev[CodeRetransmitTimeout], ev[CodeTLPProbe])
		}
	}
	simTrace = nil
}
