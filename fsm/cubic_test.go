package fsm

import (
	"strings"
	"testing"
	"time"
)

// TestCubicReduction: the single loss of TestSACKRecoverySingleLoss under
// CUBIC: ssthresh = cwnd = FlightSize·β_cubic = 1000·0.7 = 700 instead of
// Reno's half. Reference: RFC 9438 §4.6.
func TestCubicReduction(t *testing.T) {
	cfg := dupThreshConfig(100)
	cfg.Recovery.CongestionControl = CCCubic
	cli, srv, c, _ := established(t, cfg, dupThreshConfig(300))
	mustSend(t, cli, c, strings.Repeat("x", 1000))
	segs := cli.take()
	var r Ready
	for _, p := range segs[1:4] {
		r = ackBack(t, cli, srv, p)
	}
	if v := field(t, r, CodeSACKRecovery, "SSTHRESH"); v != 700 {
		t.Fatalf("ssthresh %d, want 0.7 × 1000", v)
	}
	// The reduction names CUBIC and its numbers: FlightSize 1000, cwnd 1000
	// and so W_max 1000 (no earlier W_max to converge from).
	for name, want := range map[string]uint64{"FLIGHT": 1000, "SSTHRESH": 700, "W_MAX": 1000, "CWND": 1000} {
		if v := field(t, r, CodeCubicReduce, name); v != want {
			t.Errorf("CUBIC_REDUCE %s = %d, want %d", name, v, want)
		}
	}
}

// TestCubicIsTheDefault: a Config that names no congestion control runs
// CUBIC (RFC 9438), as the rfc profile does; docs/CONFORMANCE.md says why.
func TestCubicIsTheDefault(t *testing.T) {
	if cfg := (Config{}).Defaults(); cfg.Recovery.CongestionControl != CCCubic {
		t.Fatalf("default congestion control %q, want %q", cfg.Recovery.CongestionControl, CCCubic)
	}
}

// TestCubicWindow checks W_cubic(t) = C·(t-K)³ + W_max and K in integers:
// W_max 100 segments, cwnd 70 after the reduction, so K = cbrt(30/0.4) s
// = 4.217 s; the curve is back at W_max at t = K, below it before and
// above it after, concave then convex. Reference: RFC 9438 §4.2.
func TestCubicWindow(t *testing.T) {
	const smss = 1000
	s := &ccState{cubicCurve: cubicCurve{wMax: 100 * smss}}
	s.k = icbrt((s.wMax - 70*smss) * 10_000_000_000 / (4 * smss))
	if s.k != 4217 {
		t.Fatalf("K = %d ms, want 4217", s.k)
	}
	for _, tc := range []struct {
		t    int64
		want int64
	}{
		{0, 70 * smss},     // 100 - 0.4·4.217³ segments
		{4217, 100 * smss}, // the plateau at W_max
		{8434, 130 * smss}, // symmetric above it
		{1000, 86_683},     // concave: 100 - 0.4·3.217³ = 86.68
		{6000, 102_266},    // convex: 100 + 0.4·1.783³ = 102.27
	} {
		got := cubicW(s, tc.t, smss)
		if d := got - tc.want; d < -smss/10 || d > smss/10 {
			t.Errorf("W_cubic(%d ms) = %d, want %d", tc.t, got, tc.want)
		}
	}
	for _, v := range []int64{0, 1, 7, 8, 26, 27, 1 << 40, 1<<62 + 12345} {
		r := icbrt(v)
		if r*r*r > v || (r+1)*(r+1)*(r+1) <= v {
			t.Errorf("icbrt(%d) = %d", v, r)
		}
	}
}

// TestHyStartLeavesSlowStartOnRTTRise: over the simulated link without
// loss, the bottleneck queue makes the RTT rise once slow start outruns
// 100 Mbit/s; HyStart++ sees a round's minimum RTT exceed the last one's
// by RttThresh, turns to conservative slow start and ends slow start after
// CSS_ROUNDS, without a loss. Reference: RFC 9406 §4.2.
func TestHyStartLeavesSlowStartOnRTTRise(t *testing.T) {
	algo := simAlgo{"cubic+hystart", func(c *Config) {
		c.Recovery.CongestionControl, c.Recovery.HyStart = CCCubic, true
	}}
	_, ev := simRunFor(t, algo, 0, 1, 3*time.Second)
	if ev[CodeHyStartCSS] == 0 || ev[CodeHyStartExit] != 1 || ev[CodeSACKRecovery] != 0 || ev[CodeRetransmitTimeout] != 0 {
		t.Fatalf("events %v, want HyStart++ to leave slow start with no loss", ev)
	}
}
