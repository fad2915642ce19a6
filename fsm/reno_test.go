package fsm

import "testing"

// TestRenoByteCounting: in congestion avoidance cwnd grows by one SMSS
// each time ACKs for new data have acknowledged cwnd bytes, whether the
// receiver acknowledges every segment or every second one (delayed ACKs);
// equation (3) would give 10 500 for the delayed ACKs. One ACK grows cwnd
// by one SMSS at most; the bytes past cwnd count towards the next SMSS
// (RFC 3465 §2.1), so stretch ACKs of 9 segments, one a round trip, open
// one SMSS a round trip (holding the count to cwnd opened one per two);
// a congestion response starts the count again.
// Reference: RFC 5681 §3.1, RFC 3465 §2.1.
func TestRenoByteCounting(t *testing.T) {
	const smss = 1000
	cases := []struct {
		name   string
		acks   []uint32 // bytes each ACK acknowledges
		reduce int      // ccReduce after this many ACKs (0: never)
		want   uint32   // cwnd after the ACKs (ssthresh 5000 below it throughout)
	}{
		{"an ACK per segment, one cwnd acknowledged", repeat(10, smss), 0, 11_000},
		{"an ACK per segment, one short of cwnd", repeat(9, smss), 0, 10_000},
		{"an ACK per second segment (delayed ACKs)", repeat(5, 2*smss), 0, 11_000},
		{"delayed ACKs over two windows (10 000 then 11 000 bytes)", repeat(11, 2*smss), 0, 12_000},
		{"a stretch ACK of five windows opens one SMSS", []uint32{50 * smss}, 0, 11_000},
		{"stretch ACKs of 9 segments keep the bytes past cwnd", repeat(4, 9*smss), 0, 13_000},
		{"the count restarts after a congestion response", append(repeat(9, smss), repeat(5, smss)...), 9, 10_000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Config{Recovery: Recovery{CongestionControl: CCReno}})
			c := &conn{sndMSS: smss, cwnd: 10 * smss, ssthresh: 5 * smss}
			for i, a := range tc.acks {
				if tc.reduce > 0 && i == tc.reduce {
					e.ccReduce(c, c.cwnd) // ssthresh would now be 5000; cwnd kept for the count
				}
				e.ccGrow(c, a)
			}
			if c.cwnd != tc.want {
				t.Errorf("cwnd %d after ACKs of %v, want %d", c.cwnd, tc.acks, tc.want)
			}
		})
	}
}

func repeat(n int, v uint32) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// TestSlowStartAllBytes: in slow start an ACK of N bytes opens cwnd by
// min(N, SMSS) (RFC 5681 (2)), so a stretch ACK of eight segments opens
// one; under ss_all_bytes it counts whole, up to ssthresh (RFC 3465 §2.2
// with L unbounded, Linux's tcp_slow_start), and the decision is
// explained with the numbers. An ACK of one SMSS or less is the same
// either way.
// Reference: RFC 5681 §3.1, RFC 3465 §2.2.
func TestSlowStartAllBytes(t *testing.T) {
	const smss = 1000
	for _, tc := range []struct {
		name            string
		all             bool
		ssthresh, acked uint32
		want            uint32
		explained       bool
	}{
		{"RFC 5681: a stretch ACK opens one SMSS", false, 1 << 30, 8 * smss, 11 * smss, false},
		{"ss_all_bytes: it counts whole", true, 1 << 30, 8 * smss, 18 * smss, true},
		{"ss_all_bytes: up to ssthresh", true, 14 * smss, 8 * smss, 14 * smss, true},
		{"ss_all_bytes: one SMSS acknowledged opens one", true, 1 << 30, smss, 11 * smss, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := New(Config{Recovery: Recovery{SlowStartAllBytes: tc.all}})
			c := &conn{sndMSS: smss, cwnd: 10 * smss, ssthresh: tc.ssthresh}
			e.ccGrow(c, tc.acked)
			if c.cwnd != tc.want {
				t.Errorf("cwnd %d, want %d", c.cwnd, tc.want)
			}
			r := e.Ready()
			got := false
			for _, x := range r.Explanations {
				if x.Code == CodeSlowStartAllBytes {
					got = true
					if v, _ := x.Field("CWND"); v != uint64(tc.want) {
						t.Errorf("explained CWND %d, want %d", v, tc.want)
					}
				}
			}
			if got != tc.explained {
				t.Errorf("SLOW_START_ALL_BYTES explained %v, want %v", got, tc.explained)
			}
		})
	}
}
