package fsm

import "time"

// RACK-TLP (RFC 8985): time-based loss detection and the tail loss probe,
// for connections with SACK (RFC 8985 §3.3 needs SACK to tell which
// segments were delivered). With RACK on, its loss marks stand in for RFC
// 6675's IsLost(): they start recovery, and NextSeg() rule 1 and pipe use
// them; a retransmission that is lost again is marked again and resent,
// where RFC 6675 alone would wait for the RTO.

// wcDelAckT is the worst-case delayed-ACK time the PTO allows for when a
// single segment is in flight (RFC 8985 §7.2: 200 ms).
const wcDelAckT = 200 * time.Millisecond

// rackSeg is one transmitted range of the sequence space: the RACK
// per-segment state of RFC 8985 §5.2.
type rackSeg struct {
	start, end Seq
	xmitTS     time.Duration // time of the latest (re)transmission
	order      uint64        // transmission count at it: breaks xmitTS ties
	rtx        bool          // retransmitted at least once
	lost       bool          // marked lost, not yet retransmitted since
	sacked     bool          // delivered per a SACK block
}

// rackState is RFC 8985 §5.3's per-connection state.
type rackState struct {
	segs []rackSeg // unacknowledged ranges in sequence order, from head
	head int

	xmitTS         time.Duration // RACK.xmit_ts
	endSeq         Seq           // RACK.end_seq
	order          uint64        // transmission order of that segment
	sent           uint64        // transmissions so far
	valid          bool          // RACK.xmit_ts is set
	rtt            time.Duration // RACK.rtt
	fack           Seq           // RACK.fack: the highest sequence delivered
	reorderingSeen bool
	reoWndMult     int
	reoWndPersist  int
	dsackRound     Seq
	dsackRoundSet  bool
	segsSACKed     int // segments delivered by SACK and not yet acknowledged
	// sackRTT is the RTT of the first-sent segment this ACK newly SACKed
	// that was never retransmitted (Karn), or -1: the longest of the
	// ACK's samples, as Linux takes first_sackt for its RTT estimator,
	// so that a segment that overtook the others (reordering) does not
	// pull SRTT below the path's round trip.
	sackRTT time.Duration

	tlpEndSeq    Seq // TLP.end_seq, valid while tlpOut
	tlpOut       bool
	tlpIsRetrans bool

	lossPTO bool // conn.lossAt is the PTO, not the reordering timer
}

// rackOn reports whether RACK-TLP runs for c.
func (e *Engine) rackOn(c *conn) bool { return e.sackOn(c) && !e.cfg.Recovery.NoRACK }

func (r *rackState) live() []rackSeg {
	if r == nil {
		return nil
	}
	return r.segs[r.head:]
}

// rackSent records the transmission of [start, end) now: new data is a
// new range; a retransmission updates the ranges it covers (split at its
// edges), clearing their lost marks.
func (e *Engine) rackSent(c *conn, start, end Seq, retx bool) {
	if !e.rackOn(c) || !start.LessThan(end) {
		return
	}
	if c.rack == nil {
		c.rack = new(rackState) // once per connection, at its first data
		c.sk().rackOn = true
	}
	r := c.rack
	segs := r.live()
	if n := len(segs); !retx || n == 0 || !start.LessThan(segs[n-1].end) {
		if n > 0 && start.LessThan(segs[n-1].end) {
			start = segs[n-1].end
		}
		if start.LessThan(end) {
			r.sent++
			r.push(rackSeg{start: start, end: end, xmitTS: e.now, order: r.sent, rtx: retx})
		}
		return
	}
	r.sent++
	r.split(start)
	r.split(end)
	segs = r.live()
	for i := range segs {
		s := &segs[i]
		if s.end.LessEq(start) || s.start.GreaterEq(end) {
			continue
		}
		s.xmitTS, s.order, s.rtx, s.lost = e.now, r.sent, true, false
	}
	if last := segs[len(segs)-1].end; last.LessThan(end) {
		r.push(rackSeg{start: last, end: end, xmitTS: e.now, order: r.sent, rtx: true})
	}
}

func (r *rackState) push(s rackSeg) {
	if r.head > 0 && len(r.segs) == cap(r.segs) {
		n := copy(r.segs, r.segs[r.head:])
		r.segs, r.head = r.segs[:n], 0
	}
	r.segs = append(r.segs, s)
}

// split cuts the range holding seq so that one starts at seq.
func (r *rackState) split(seq Seq) {
	segs := r.live()
	for i := range segs {
		s := segs[i]
		if s.start.LessThan(seq) && seq.LessThan(s.end) {
			r.segs = append(r.segs, rackSeg{})
			segs = r.live()
			copy(segs[i+1:], segs[i:])
			segs[i].end = seq
			segs[i+1].start = seq
			return
		}
	}
}

// rackOnAck is RFC 8985 §6.2 steps 1-5 for an ACK: forget what it
// acknowledges, note what it and its SACK blocks delivered, update
// RACK.xmit_ts, RACK.rtt, reordering and the reordering window, and mark
// losses. It returns whether a segment was newly marked lost.
func (e *Engine) rackOnAck(c *conn, seg *Segment) bool {
	r := c.rack
	if r == nil {
		return false
	}
	una := seg.Ack // SND.UNA once this ACK is processed
	dsack := isDSACK(seg)
	deliver := func(s *rackSeg) {
		// Step 2: RTT of the delivered segment, skipping ambiguous ones.
		rtt := e.now - s.xmitTS
		if s.rtx {
			o := &seg.Options
			if rtt < c.sk().minRTT || (c.tsOK && o.HasTimestamp && int32(o.TSEcr-uint32(s.xmitTS/time.Millisecond)-c.tsOffset) < 0) {
				return
			}
		}
		r.rtt = rtt
		if !r.valid || sentAfter(s.xmitTS, s.order, r.xmitTS, r.order) {
			r.xmitTS, r.endSeq, r.order, r.valid = s.xmitTS, s.end, s.order, true
		}
		// Step 3: a never-retransmitted segment delivered below RACK.fack
		// arrived out of order.
		if !s.rtx && s.end.LessThan(r.fack) {
			r.reorderingSeen = true
		}
		if s.end.GreaterThan(r.fack) {
			r.fack = s.end
		}
	}
	r.sackRTT = -1
	var sackSent time.Duration
	for r.head < len(r.segs) {
		s := &r.segs[r.head]
		if s.end.GreaterThan(una) {
			if s.start.LessThan(una) {
				s.start = una
			}
			break
		}
		if s.sacked {
			r.segsSACKed--
		} else {
			deliver(s)
		}
		r.segs[r.head] = rackSeg{}
		r.head++
	}
	if r.head == len(r.segs) {
		r.segs, r.head = r.segs[:0], 0
	}
	segs := r.live()
	bi := 0
	board := c.sk().board
	for i := range segs {
		s := &segs[i]
		if s.sacked {
			continue
		}
		for bi < len(board) && board[bi].End.LessEq(s.start) {
			bi++
		}
		if bi < len(board) && board[bi].Start.LessEq(s.start) && s.end.LessEq(board[bi].End) {
			s.sacked, s.lost = true, false
			r.segsSACKed++
			deliver(s)
			if !s.rtx && (r.sackRTT < 0 || s.xmitTS < sackSent) {
				r.sackRTT, sackSent = e.now-s.xmitTS, s.xmitTS
			}
		}
	}
	e.rackUpdateReoWnd(c, dsack)
	return e.rackDetectLoss(c)
}

// sentAfter is RACK_sent_after (RFC 8985 §6.2): t1 later than t2, or at
// the same time and later in transmission order. The RFC breaks ties by
// sequence number, which is the transmission order only without
// retransmissions; on the engine's virtual clock many segments share an
// instant, so the transmission count breaks the tie instead.
func sentAfter(t1 time.Duration, n1 uint64, t2 time.Duration, n2 uint64) bool {
	return t1 > t2 || (t1 == t2 && n1 > n2)
}

// isDSACK reports a D-SACK (RFC 2883 §4): the first block lies at or
// below SEG.ACK, or inside the second block.
func isDSACK(seg *Segment) bool {
	o := &seg.Options
	if o.NumSACK == 0 {
		return false
	}
	b := o.SACK[0]
	if b.End.LessEq(seg.Ack) {
		return true
	}
	return o.NumSACK > 1 && o.SACK[1].Start.LessEq(b.Start) && b.End.LessEq(o.SACK[1].End)
}

// rackUpdateReoWnd is RFC 8985 §6.2 step 4's DSACK-driven adaptation of
// the reordering window multiplier.
func (e *Engine) rackUpdateReoWnd(c *conn, dsack bool) {
	r := c.rack
	if r.reoWndMult == 0 {
		r.reoWndMult = 1
	}
	if r.dsackRoundSet && c.sndUna.GreaterEq(r.dsackRound) {
		r.dsackRoundSet = false
	}
	if !r.dsackRoundSet && dsack {
		r.dsackRound, r.dsackRoundSet = c.sndNxt, true
		r.reoWndMult++
		r.reoWndPersist = 16
	}
}

// rackExitRecovery counts a recovery without D-SACKs towards resetting the
// multiplier (RFC 8985 §6.2 step 4).
func (r *rackState) exitRecovery() {
	if r == nil {
		return
	}
	if r.reoWndPersist--; r.reoWndPersist <= 0 {
		r.reoWndMult = 1
	}
}

// reoWnd is RACK.reo_wnd (RFC 8985 §6.2 step 4): zero while no reordering
// has been seen and the sender is in recovery or DupThresh segments are
// SACKed (the DupAck heuristic's speed), else a quarter of min_RTT per
// multiplier, at most SRTT.
func (e *Engine) reoWnd(c *conn) time.Duration {
	r := c.rack
	if !r.reorderingSeen && (c.inRecovery || c.sk().rtoGuard || r.segsSACKed >= dupThresh) {
		return 0
	}
	return min(time.Duration(max(r.reoWndMult, 1))*c.sk().minRTT/4, c.srtt)
}

// rackDetectLoss is RACK_detect_loss_and_arm_timer (RFC 8985 §6.2 step 5):
// a segment sent before the most recently delivered one, and not itself
// delivered within RACK.rtt + reo_wnd of its transmission, is lost; for
// the others the reordering timer waits for the time left.
func (e *Engine) rackDetectLoss(c *conn) bool {
	r := c.rack
	if r == nil || !r.valid {
		return false
	}
	reo := e.reoWnd(c)
	var timeout time.Duration
	marked := false
	segs := r.live()
	for i := range segs {
		s := &segs[i]
		if s.sacked || s.lost || !sentAfter(r.xmitTS, r.order, s.xmitTS, s.order) {
			continue
		}
		if remaining := s.xmitTS + r.rtt + reo - e.now; remaining <= 0 {
			s.lost, marked = true, true
		} else {
			timeout = max(timeout, remaining)
		}
	}
	if timeout > 0 {
		c.lossAt, r.lossPTO = e.deadlineAfter(timeout), false
		e.schedule(c)
	} else if !r.lossPTO && c.lossAt != 0 {
		c.lossAt = 0
		e.schedule(c)
	}
	if marked {
		e.explain(c.id, CodeRACKLost, ActionInfo, Field{"RACK.RTT.MS", uint64(r.rtt / time.Millisecond)},
			Field{"REO.WND.MS", uint64(reo / time.Millisecond)}, Field{"RACK.END.SEQ", uint64(r.endSeq)},
			Field{"LOST.BYTES", uint64(c.rackLostBytes())}, Field{"MIN.RTT.MS", uint64(c.sk().minRTT / time.Millisecond)})
	}
	return marked
}

func (c *conn) rackLostBytes() uint32 {
	var n uint32
	for _, s := range c.rack.live() {
		if s.lost {
			n += uint32(s.end.Sub(s.start))
		}
	}
	return n
}

// rackPipe is pipe with RACK's marks: the octets sent and neither
// delivered nor marked lost (a retransmission stands for its original).
func (c *conn) rackPipe() uint32 {
	var n uint32
	for _, s := range c.rack.live() {
		if !s.sacked && !s.lost {
			n += uint32(s.end.Sub(s.start))
		}
	}
	return n
}

// rackFirstLost returns the first range marked lost, clipped to one
// segment, for NextSeg() rule 1.
func (c *conn) rackFirstLost() (Seq, Seq, bool) {
	for _, s := range c.rack.live() {
		if s.lost {
			end := MinSeq(s.end, s.start.Add(Size(c.segMSS())))
			if c.finSent && s.end == c.finSeq()+1 && end.GreaterEq(c.finSeq()) {
				end = s.end
			}
			return s.start, end, true
		}
	}
	return 0, 0, false
}

// rackOnTimeout forgets SACK marks with the scoreboard (RFC 2018 §8),
// unless keepSACKed (rto_keep_sack keeps the board), and the loss marks,
// and stops the RACK timer on an RTO.
func (e *Engine) rackOnTimeout(c *conn, keepSACKed bool) {
	r := c.rack
	if r == nil {
		return
	}
	for i := range r.segs[r.head:] {
		s := &r.segs[r.head+i]
		s.lost = false
		if !keepSACKed {
			s.sacked = false
		}
	}
	if !keepSACKed {
		r.segsSACKed = 0
	}
	r.tlpOut = false
	if c.lossAt != 0 {
		c.lossAt = 0
		e.schedule(c)
	}
}

// armPTO starts the tail loss probe timer (RFC 8985 §7.2) when data is in
// flight, the sender is not recovering, and no probe is outstanding: PTO =
// 2·SRTT (plus WCDelAckT with one segment in flight; 1 s without an RTT
// sample), never beyond the RTO.
func (e *Engine) armPTO(c *conn) {
	r := c.rack
	if r == nil || !e.rackOn(c) || e.cfg.Recovery.NoTLP || c.inRecovery || c.sk().rtoGuard || r.tlpOut || c.sndUna == c.sndNxt ||
		len(c.sk().board) > 0 || (c.lossAt != 0 && !r.lossPTO) {
		return
	}
	pto := time.Second
	if c.srtt > 0 {
		pto = 2 * c.srtt
		if c.flight() <= uint32(c.effMSS()) {
			pto += wcDelAckT
		}
	}
	at := e.deadlineAfter(pto)
	if c.rtxAt != 0 && at > c.rtxAt {
		at = c.rtxAt
	}
	c.lossAt, r.lossPTO = at, true
	e.schedule(c)
}

// lossTimeout runs the RACK reordering timer or the PTO.
func (e *Engine) lossTimeout(c *conn) {
	r := c.rack
	if r == nil {
		return
	}
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	default:
		return
	}
	if !r.lossPTO {
		// RFC 8985 §6.3: the reordering timer re-runs loss detection.
		if e.rackDetectLoss(c) {
			e.sackLossDetected(c, 0)
			e.output(c)
		}
		return
	}
	e.tlpSendProbe(c)
}

// tlpSendProbe is TLP_send_probe (RFC 8985 §7.3): one segment of new data
// if the window allows, else the last segment sent again; then the RTO
// takes over.
func (e *Engine) tlpSendProbe(c *conn) {
	r := c.rack
	if c.sndUna == c.sndNxt {
		return
	}
	var start, end Seq
	if c.newDataSendable() && c.sndBuf.Len() > int(c.sndNxt.Sub(c.sndBufSeq())) {
		start = c.sndNxt
		n := min(c.sndBuf.Len()-int(c.sndNxt.Sub(c.sndBufSeq())), c.segMSS(), int(c.sndUna.Add(Size(c.sndWnd)).Sub(c.sndNxt)))
		end = start.Add(Size(n))
		fin := c.finQueued && !c.finSent && int(end.Sub(c.sndBufSeq())) == c.sndBuf.Len()
		if fin {
			c.finSent = true
			end++
		}
		c.sndNxt, c.rtxNxt = end, end
		e.sendRange(c, start, end, false)
		r.tlpIsRetrans = false
	} else {
		end = c.sndNxt
		start = c.sndUna
		if end.Sub(start) > Size(c.segMSS()) {
			start = end.Add(-Size(c.segMSS()))
			if c.finSent && end == c.finSeq()+1 {
				start-- // keep a full segment of text before the FIN
			}
			start = MaxSeq(start, c.sndUna)
		}
		e.sendRange(c, start, end, true)
		r.tlpIsRetrans = true
	}
	r.tlpEndSeq, r.tlpOut = c.sndNxt, true
	e.explain(c.id, CodeTLPProbe, ActionAccepted, Field{"SEG.SEQ", uint64(start)}, Field{"SEG.LEN", uint64(end.Sub(start))},
		Field{"RETRANSMISSION", b2u(r.tlpIsRetrans)}, Field{"SRTT.MS", uint64(c.srtt / time.Millisecond)}, Field{"TLP.END.SEQ", uint64(r.tlpEndSeq)})
	e.armRtx(c)
}

// tlpOnAck is TLP_process_ack (RFC 8985 §7.4): the ACK of a probe tells
// whether it repaired a loss, which then gets the congestion response.
func (e *Engine) tlpOnAck(c *conn, seg *Segment) {
	r := c.rack
	if r == nil || !r.tlpOut || seg.Ack.LessThan(r.tlpEndSeq) {
		return
	}
	switch {
	case !r.tlpIsRetrans:
		r.tlpOut = false // a probe of new data: nothing to learn
	case isDSACK(seg):
		r.tlpOut = false // the original arrived too: no loss
	case seg.Ack.GreaterThan(r.tlpEndSeq):
		r.tlpOut = false
		// The probe repaired a single loss: react as to a loss
		// detected by fast recovery (RFC 8985 §7.4.2).
		c.ssthresh = e.ccReduce(c, c.flight())
		c.cwnd = c.ssthresh
		e.explain(c.id, CodeTLPLossRepaired, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"TLP.END.SEQ", uint64(r.tlpEndSeq)},
			Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"CWND", uint64(c.cwnd)})
	case seg.Options.NumSACK == 0 && seg.Ack == r.tlpEndSeq:
		r.tlpOut = false
	}
}
