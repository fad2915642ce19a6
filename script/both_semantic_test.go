package script

import "testing"

// TestSameSemanticFailure: a line both targets fail is the same failure
// under semantic compare when the packets agree but for window, options,
// PSH and time, or, with no packet, the reasons agree but for numbers and
// the engine's commentary.
func TestSameSemanticFailure(t *testing.T) {
	fail := func(actual, reason string) LineResult {
		return LineResult{Status: StatusFail, Actual: actual, Reason: reason}
	}
	for _, tc := range []struct {
		name string
		k, e LineResult
		same bool
	}{
		{"window and time", fail(". 1:1(0) ack 101 win 64140 at 0.301044", "early"), fail(". 1:1(0) ack 101 win 65435 at 0.300", "early (the engine on ...)"), true},
		{"options and PSH", fail("P. 1:11(10) ack 1 win 502 <nop,nop,TS val 1 ecr 2>", ""), fail(". 1:11(10) ack 1 win 65535", ""), true},
		{"ack differs", fail(". 1:1(0) ack 101 win 64140", ""), fail(". 1:1(0) ack 102 win 64140", ""), false},
		{"flags differ", fail("R. 1:1(0) ack 101", ""), fail("R 1:1(0)", ""), false},
		{"one side has a packet", fail(". 1:1(0) ack 101", ""), fail("", "expected a packet, none emitted"), false},
		{"same reason", fail("", "no packet by 0.504 (the engine said nothing)"), fail("", "no packet by 0.5 (the engine on line 3: ...)"), true},
		{"other reason", fail("", "no packet by 0.504"), fail("", "state ESTABLISHED, want CLOSE_WAIT"), false},
		{"call results", fail("-1 (EAGAIN)", ""), fail("-1 (EAGAIN)", ""), true},
		{"one passed", LineResult{Status: StatusPass}, fail("x", ""), false},
	} {
		if got := sameSemanticFailure(tc.k, tc.e); got != tc.same {
			t.Errorf("%s: sameSemanticFailure = %v, want %v", tc.name, got, tc.same)
		}
	}
}
