package fsm

import (
	"testing"
	"time"
)

// TestMinRTOOption: with a 20 ms path the RFC 6298 estimate is
// SRTT + 4·RTTVAR = 20 + 4·10 = 60 ms, which rule 2.4 rounds up to the
// minimum RTO: 1 s by default (the RFC's "SHOULD be rounded up to 1
// second"), 200 ms when Config.MinRTO says so (Linux's TCP_RTO_MIN). The
// lost segment is resent when that timer expires, not before.
// Reference: RFC 6298 §2.4, §5.
func TestMinRTOOption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		minRTO time.Duration
		want   time.Duration
	}{
		{"rfc 1s", 0, time.Second},
		{"linux 200ms", 200 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fixedConfig(100)
			cfg.MinRTO = tc.minRTO
			cfg.Recovery.NoTLP = true // no tail loss probe ahead of the RTO
			cli, _, c, _ := established(t, cfg, fixedConfig(300))
			mustSend(t, cli, c, "ping")
			cli.expect("P. seq=101 ack=301 len=4")
			cli.e.AdvanceTo(20 * time.Millisecond)
			cli.inject(serverAddr, clientAddr, Segment{Flags: FlagACK, Seq: 301, Ack: 105, Window: 65535})
			in, _ := cli.e.Endpoint(c)
			if in.SRTT != 20*time.Millisecond || in.RTO != tc.want {
				t.Fatalf("SRTT %v RTO %v, want 20ms and %v", in.SRTT, in.RTO, tc.want)
			}
			mustSend(t, cli, c, "lost")
			cli.expect("P. seq=105 ack=301 len=4") // the link drops it
			cli.e.AdvanceTo(20*time.Millisecond + tc.want - time.Millisecond)
			cli.expectNothing()
			cli.e.AdvanceTo(20*time.Millisecond + tc.want)
			wantExplanation(t, cli.collect(), CodeRetransmitTimeout)
			cli.expect("P. seq=105 ack=301 len=4")
		})
	}
}
