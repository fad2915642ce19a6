// Reno congestion avoidance with byte counting (RFC 5681 §3.1).

package fsm

// renoGrow is RFC 5681 §3.1's RECOMMENDED congestion avoidance: "count the
// number of bytes that have been acknowledged by ACKs for new data ...
// When the number of bytes acknowledged reaches cwnd, then cwnd can be
// incremented by up to SMSS bytes." Equation (3), cwnd += SMSS*SMSS/cwnd
// on every ACK, which the RFC allows as an approximation, grows half as
// fast against a receiver that acknowledges every second full-sized
// segment (RFC 5681 §4.2, as Linux and FreeBSD do): one SMSS per two round
// trips. As RFC 3465 §2.1 has it, the count is reduced by cwnd when cwnd
// grows, so the bytes past it count towards the next SMSS: a receiver that
// acknowledges a window in one or two stretch ACKs (Linux behind a TUN
// device does) still opens one SMSS per round trip, where dropping them
// opened one per two. One ACK counts cwnd bytes at most, so it opens one
// SMSS at most and the carry stays under cwnd; the count starts again
// from zero after a congestion response (ccReduce).
func (e *Engine) renoGrow(c *conn, acked uint32) {
	s := c.ccs()
	s.renoAcked += min(acked, c.cwnd)
	if s.renoAcked >= c.cwnd {
		s.renoAcked -= c.cwnd
		c.cwnd += uint32(c.effMSS())
	}
}
