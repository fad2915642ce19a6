// Reno congestion avoidance with byte counting (RFC 5681 §3.1).

package fsm

// renoGrow is RFC 5681 §3.1's RECOMMENDED congestion avoidance: "count the
// number of bytes that have been acknowledged by ACKs for new data ...
// When the number of bytes acknowledged reaches cwnd, then cwnd can be
// incremented by up to SMSS bytes." Equation (3), cwnd += SMSS*SMSS/cwnd
// on every ACK, which the RFC allows as an approximation, grows half as
// fast against a receiver that acknowledges every second full-sized
// segment (RFC 5681 §4.2, as Linux and FreeBSD do): one SMSS per two round
// trips. The count is held to cwnd, so one ACK opens cwnd by one SMSS at
// most, and starts again from zero after a congestion response (ccReduce).
func (e *Engine) renoGrow(c *conn, acked uint32) {
	s := c.ccs()
	s.renoAcked = min(s.renoAcked+acked, c.cwnd)
	if s.renoAcked >= c.cwnd {
		s.renoAcked -= c.cwnd
		c.cwnd += uint32(c.effMSS())
	}
}
