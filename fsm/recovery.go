package fsm

import "time"

// SACK-based loss recovery (RFC 6675) with Proportional Rate Reduction
// (RFC 6937). Names follow the RFCs: HighACK is SND.UNA-1, HighData is
// SND.NXT-1, RecoveryPoint is conn.recover-1 (recover holds SND.NXT at the
// start of recovery, as for NewReno), and highRxt holds HighRxt+1, so
// every range here is half-open [start, end) like a SACK block.

// dupThresh is DupThresh (RFC 6675 §2, RFC 5681 §3.2).
const dupThresh = 3

// maxScoreboard bounds the SACKed ranges a connection remembers; a peer
// cannot make the scoreboard grow without limit. Past it the highest range
// is forgotten, which at worst resends data the peer already has.
const maxScoreboard = 256

// sackState is the scoreboard (RFC 6675 §3) and the recovery variables.
type sackState struct {
	// board holds the SACKed ranges above SND.UNA, sorted, disjoint and
	// never touching: SACKed octets, not segments.
	board      []SACKBlock
	inRecovery bool // in RFC 6675 loss recovery (conn.inRecovery is set too)
	// rtoGuard: a retransmission timeout set RecoveryPoint; no new
	// recovery starts until SND.UNA reaches it (RFC 6675 §5.1).
	rtoGuard  bool
	highRxt   Seq // HighRxt+1: one past the highest octet retransmitted
	rescueRxt Seq // RescueRxt, valid while rescueSet
	rescueSet bool
	pipe      uint32 // the last SetPipe(), plus what was sent since
	// RACK (rack.go): whether it runs, whether the ACK being processed
	// marked a loss, and RACK.min_RTT (the least RTT sample seen).
	rackOn, rackLost bool
	minRTT           time.Duration
	newly            uint32 // octets newly SACKed by the ACK being processed
	// ltBytes is what limited transmit (RFC 6675 §5 step 3) sent past
	// SND.UNA + cwnd since DupAcks left zero: RFC 5681 leaves it out of
	// FlightSize for ssthresh.
	ltBytes uint32
	// PRR (RFC 6937 §3).
	prrDelivered, prrOut, recoverFS uint32
}

// sk returns the SACK state, allocating it on first use: a connection that
// never sends data or meets a SACK block does not pay for it.
func (c *conn) sk() *sackState {
	if c.sack == nil {
		c.sack = new(sackState)
	}
	return c.sack
}

// sackOn reports whether c uses RFC 6675 at all: SACK was negotiated and
// Config.Recovery.NoSACKRecovery is off.
func (e *Engine) sackOn(c *conn) bool { return c.sackOK && !e.cfg.Recovery.NoSACKRecovery }

// sackMode reports whether this ACK is handled by RFC 6675 rather than
// NewReno: in SACK recovery, or outside any recovery with SACK information
// held. A peer that negotiated SACK but sends no blocks, and a NewReno
// recovery already under way, stay with NewReno.
func (e *Engine) sackMode(c *conn) bool {
	st := c.sack
	if st == nil || !e.sackOn(c) {
		return false
	}
	return st.inRecovery || (!c.inRecovery && len(st.board) > 0)
}

// sackUpdate is RFC 6675's Update(): it forgets what SEG.ACK covers and
// records the ACK's SACK blocks (RFC 2018 §3), returning the octets newly
// SACKed. Blocks beyond SND.NXT are bogus and ignored; a block at or below
// SEG.ACK (a D-SACK, RFC 2883) adds nothing here.
func (e *Engine) sackUpdate(c *conn, seg *Segment) uint32 {
	st := c.sk()
	st.newly = 0
	c.sk().rackOn = e.rackOn(c)
	lo := seg.Ack
	// Forget what the cumulative ACK now covers.
	k := 0
	for k < len(st.board) && st.board[k].End.LessEq(lo) {
		k++
	}
	if k > 0 {
		n := copy(st.board, st.board[k:])
		clear(st.board[n:])
		st.board = st.board[:n]
	}
	if len(st.board) > 0 && st.board[0].Start.LessThan(lo) {
		st.board[0].Start = lo
	}
	o := &seg.Options
	for _, b := range o.SACK[:min(int(o.NumSACK), MaxSACKBlocks)] {
		if !b.Start.LessThan(b.End) || b.End.GreaterThan(c.sndNxt) || b.End.LessEq(lo) {
			continue
		}
		st.newly += st.insert(MaxSeq(b.Start, lo), b.End)
	}
	return st.newly
}

// insert merges [s, e) into the board and returns the octets it added.
func (st *sackState) insert(s, e Seq) uint32 {
	b := st.board
	i := 0
	for i < len(b) && b[i].End.LessThan(s) {
		i++
	}
	j := i
	for j < len(b) && b[j].Start.LessEq(e) {
		j++
	}
	if i == j {
		if len(b) >= maxScoreboard {
			if i == len(b) {
				return 0 // above everything held: forget it instead
			}
			b = b[:len(b)-1]
		}
		b = append(b, SACKBlock{})
		copy(b[i+1:], b[i:])
		b[i] = SACKBlock{s, e}
		st.board = b
		return uint32(e.Sub(s))
	}
	lo, hi := MinSeq(s, b[i].Start), MaxSeq(e, b[j-1].End)
	var old uint32
	for _, x := range b[i:j] {
		old += uint32(x.End.Sub(x.Start))
	}
	b[i] = SACKBlock{lo, hi}
	n := copy(b[i+1:], b[j:])
	st.board = b[:i+1+n]
	return uint32(hi.Sub(lo)) - old
}

// sacked is the number of octets the board holds.
func (st *sackState) sacked() uint32 {
	var n uint32
	for _, b := range st.board {
		n += uint32(b.End.Sub(b.Start))
	}
	return n
}

// hole returns the k-th unSACKed range in [SND.UNA, SND.NXT): hole k lies
// below board[k] (k = len(board): above the highest SACKed octet).
func (c *conn) hole(k int) (Seq, Seq) {
	a, b := c.sndUna, c.sndNxt
	if k > 0 {
		a = c.sk().board[k-1].End
	}
	if k < len(c.sk().board) {
		b = c.sk().board[k].Start
	}
	return a, b
}

// holeLost is IsLost() for every octet of hole k, all of which have the
// same SACKed data above them: DupThresh discontiguous SACKed ranges above
// it, or more than (DupThresh-1)·SMSS SACKed octets (RFC 6675 §4).
func (c *conn) holeLost(k int, above uint32) bool {
	n := len(c.sk().board)
	return k < n && (n-k >= dupThresh || above > (dupThresh-1)*uint32(c.effMSS()))
}

// setPipe is RFC 6675's SetPipe(): over every unSACKed octet from HighACK
// to HighData, one for each not deemed lost (it may still be in the
// network) and one more for each at or below HighRxt (its retransmission).
func (c *conn) setPipe() uint32 {
	st := c.sk()
	if c.sk().rackOn {
		st.pipe = c.rackPipe()
		return st.pipe
	}
	above := st.sacked()
	var pipe uint32
	for k := 0; k <= len(st.board); k++ {
		if k > 0 {
			above -= uint32(st.board[k-1].End.Sub(st.board[k-1].Start))
		}
		a, b := c.hole(k)
		if !a.LessThan(b) {
			continue
		}
		if !c.holeLost(k, above) {
			pipe += uint32(b.Sub(a))
		}
		if st.highRxt.GreaterThan(a) {
			pipe += uint32(MinSeq(b, st.highRxt).Sub(a))
		}
	}
	st.pipe = pipe
	return pipe
}

// isLostHighACK is IsLost(HighACK+1): the first unSACKed octet is lost.
func (c *conn) isLostHighACK() bool {
	if len(c.sk().board) == 0 {
		return false
	}
	a, b := c.hole(0)
	return a.LessThan(b) && c.holeLost(0, c.sk().sacked())
}

// nextSeg is RFC 6675's NextSeg(): the range of the next segment to send
// in recovery and the rule that chose it; rule 2 (new data) is left to
// sackSendNew. ok is false when no rule applies (rule 5).
func (c *conn) nextSeg() (start, end Seq, rule int, ok bool) {
	st := c.sk()
	n := len(st.board)
	mss := Size(c.segMSS())
	pick := func(a, b Seq) (Seq, Seq) {
		end := MinSeq(b, a.Add(mss))
		if c.finSent && b == c.finSeq()+1 && a.Add(mss).GreaterEq(c.finSeq()) {
			end = b // the FIN costs no payload: it rides along
		}
		return a, end
	}
	// Rule 1: the first unSACKed octet above HighRxt, below the highest
	// SACKed octet, that IsLost. With RACK: the first range it marked lost
	// (its mark is cleared when it is resent, so HighRxt does not apply).
	if c.sk().rackOn {
		if s, e, ok := c.rackFirstLost(); ok {
			return s, e, 1, true
		}
	}
	above := st.sacked()
	for k := 0; k < n && !c.sk().rackOn; k++ {
		if k > 0 {
			above -= uint32(st.board[k-1].End.Sub(st.board[k-1].Start))
		}
		a, b := c.hole(k)
		a = MaxSeq(a, st.highRxt)
		if a.LessThan(b) && c.holeLost(k, above) {
			s, e := pick(a, b)
			return s, e, 1, true
		}
	}
	// Rule 2: unsent data the receiver's window allows.
	if c.newDataSendable() {
		return c.sndNxt, c.sndNxt, 2, true
	}
	// Rule 3: the first unSACKed octet above HighRxt below the highest
	// SACKed octet, lost or not (a SHOULD).
	for k := 0; k < n; k++ {
		a, b := c.hole(k)
		a = MaxSeq(a, st.highRxt)
		if a.LessThan(b) {
			s, e := pick(a, b)
			return s, e, 3, true
		}
	}
	// Rule 4: one rescue retransmission per recovery, of the highest
	// unSACKed octet, once HighACK has passed RescueRxt.
	if !st.rescueSet || (c.sndUna - 1).GreaterThan(st.rescueRxt) {
		for k := n; k >= 0; k-- {
			a, b := c.hole(k)
			if a.LessThan(b) {
				if b.Sub(a) > mss {
					a = b.Add(-mss)
				}
				return a, b, 4, true
			}
		}
	}
	return 0, 0, 0, false
}

// newDataSendable reports whether unsent text (or the FIN) exists and the
// peer's window has room for it.
func (c *conn) newDataSendable() bool {
	unsent := c.sndBuf.Len() - int(c.sndNxt.Sub(c.sndBufSeq()))
	if unsent <= 0 && !(c.finQueued && !c.finSent) {
		return false
	}
	return c.sndUna.Add(Size(c.sndWnd)).GreaterThan(c.sndNxt) || unsent <= 0
}

// sackSend is RFC 6675 §5 (C): while cwnd - pipe >= 1 SMSS, send what
// NextSeg() names, counting it into pipe (and, for PRR, into prr_out).
func (e *Engine) sackSend(c *conn) {
	st := c.sk()
	smss := uint32(c.effMSS())
	for st.pipe+smss <= c.cwnd {
		start, end, rule, ok := c.nextSeg()
		if !ok {
			return
		}
		var sent Size
		if rule == 2 {
			if sent = e.sackSendNew(c); sent == 0 {
				return
			}
		} else {
			e.explain(c.id, CodeSACKNextSeg, ActionAccepted, Field{"SEG.SEQ", uint64(start)}, Field{"SEG.LEN", uint64(end.Sub(start))},
				Field{"RULE", uint64(rule)}, Field{"CWND", uint64(c.cwnd)}, Field{"PIPE", uint64(st.pipe)}, Field{"SSTHRESH", uint64(c.ssthresh)})
			e.sendRange(c, start, end, true)
			sent = end.Sub(start)
			if rule == 4 {
				st.rescueRxt, st.rescueSet = c.recover-1, true // RescueRxt = RecoveryPoint; HighRxt stays
			} else {
				st.highRxt = end // (C.2)
			}
		}
		st.pipe += uint32(sent) // (C.4)
		st.prrOut += uint32(sent)
	}
}

// sendRange sends [start, end) of the sequence space: text from the send
// buffer and the FIN if end lies past it; retx marks it for Karn's rule.
func (e *Engine) sendRange(c *conn, start, end Seq, retx bool) {
	dataEnd := end
	fin := c.finSent && end == c.finSeq()+1
	if fin {
		dataEnd = c.finSeq()
	}
	off := int(start.Sub(c.sndBufSeq()))
	n := int(dataEnd.Sub(start))
	var payload []byte
	flags := FlagACK
	if n > 0 {
		if cap(e.scratch) < n {
			e.scratch = make([]byte, max(n, 1<<16))
		}
		payload = e.scratch[:n]
		c.sndBuf.peek(off, payload)
		if off+n == c.sndBuf.Len() {
			flags |= FlagPSH
		}
	}
	if fin {
		flags |= FlagFIN
	}
	s := e.segment(c, flags, start, payload)
	e.emit(c.id, c.local, c.remote, &s)
	e.rackSent(c, start, end, retx)
	if retx {
		c.noteRetransmit(end)
	}
	if c.rtxAt == 0 {
		e.armRtx(c)
	}
}

// sackSendNew is NextSeg() rule 2: one segment of unsent text (with the
// FIN if it ends the stream) within the peer's window. A runt that is not
// the end of the stream waits, as sender SWS avoidance asks (RFC 9293
// §3.8.6.2.1). It returns the sequence space sent.
func (e *Engine) sackSendNew(c *conn) Size {
	next := c.sndNxt
	off := int(next.Sub(c.sndBufSeq()))
	unsent := max(c.sndBuf.Len()-off, 0)
	usable := 0
	if edge := c.sndUna.Add(Size(c.sndWnd)); edge.GreaterThan(next) {
		usable = int(edge.Sub(next))
	}
	mss := c.segMSS()
	n := min(unsent, mss, usable)
	fin := c.finQueued && !c.finSent && n == unsent
	if n < mss && n < unsent || (n == 0 && !fin) {
		return 0
	}
	end := next.Add(Size(n))
	if fin {
		end++
	}
	e.explain(c.id, CodeSACKNextSeg, ActionAccepted, Field{"SEG.SEQ", uint64(next)}, Field{"SEG.LEN", uint64(end.Sub(next))},
		Field{"RULE", 2}, Field{"CWND", uint64(c.cwnd)}, Field{"PIPE", uint64(c.sk().pipe)}, Field{"SSTHRESH", uint64(c.ssthresh)})
	if fin {
		c.finSent = true
		e.explain(c.id, CodeFinSent, ActionInfo, Field{"SEG.SEQ", uint64(end - 1)})
	}
	c.sndNxt, c.rtxNxt = end, end
	e.sendRange(c, next, end, false)
	e.armPTO(c)
	if !c.rttMeasuring && !c.tsOK {
		c.rttMeasuring, c.rttSeq, c.rttStart = true, end, e.now
	}
	return end.Sub(next)
}

// sackOnAck is RFC 6675 §5 for one ACK (acked octets newly acknowledged
// cumulatively, c.sk().newly newly SACKed), with PRR (RFC 6937 §3) during
// recovery. It leaves what to send to output (sackSend).
func (e *Engine) sackOnAck(c *conn, seg *Segment, acked uint32) {
	st := c.sk()
	rackLost := c.sk().rackOn && c.sk().rackLost
	if st.rtoGuard && c.sndUna.GreaterEq(c.recover) {
		st.rtoGuard = false
	}
	if st.inRecovery {
		if seg.Ack.GreaterEq(c.recover) {
			// (A): the cumulative ACK passed RecoveryPoint. RFC 6937 §3:
			// cwnd = ssthresh at the end of recovery.
			st.inRecovery, c.inRecovery = false, false
			c.cwnd = c.ssthresh
			c.rack.exitRecovery()
			c.dupAcks = 0
			e.explain(c.id, CodeSACKRecoveryDone, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)},
				Field{"RECOVERY.POINT", uint64(c.recover - 1)}, Field{"CWND", uint64(c.cwnd)}, Field{"SSTHRESH", uint64(c.ssthresh)})
			return
		}
		if rackLost && c.rack != nil {
			c.rack.tlpOut = false
		}
		c.setPipe() // (B)
		e.prr(c, acked+st.newly)
		return
	}
	if acked > 0 {
		c.dupAcks, st.ltBytes = 0, 0 // a cumulative ACK resets DupAcks
		e.ccGrow(c, acked)
	}
	if st.newly == 0 {
		return
	}
	// RFC 6675 §2: an ACK carrying new SACK information is a duplicate.
	c.dupAcks++
	pipe := c.setPipe()
	e.explain(c.id, CodeAckSACKed, ActionInfo, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"SACKED", uint64(st.newly)},
		Field{"DUPACKS", uint64(c.dupAcks)}, Field{"PIPE", uint64(pipe)}, Field{"CWND", uint64(c.cwnd)}, Field{"SSTHRESH", uint64(c.ssthresh)})
	lost := c.dupAcks >= dupThresh || c.isLostHighACK()
	if c.sk().rackOn {
		lost = rackLost // RACK's marks replace the DupThresh rules
	}
	if !lost {
		st.highRxt = c.sndUna // (3.1); output sends new data while cwnd - pipe >= 1 SMSS
		return
	}
	e.sackLossDetected(c, acked)
}

// sackLossDetected starts loss recovery (RFC 6675 §5 step 4) unless an
// RTO's RecoveryPoint holds it off (§5.1).
func (e *Engine) sackLossDetected(c *conn, acked uint32) {
	st := c.sk()
	if st.inRecovery {
		c.setPipe()
		return
	}
	if st.rtoGuard {
		e.explain(c.id, CodeSACKRecoveryHeld, ActionInfo, Field{"RECOVERY.POINT", uint64(c.recover - 1)}, Field{"SND.UNA", uint64(c.sndUna)})
		return
	}
	pipe := c.setPipe()
	e.eifelOnFastRetransmit(c)
	// (4): fast retransmit and loss recovery.
	flight := c.flight() - min(st.ltBytes, c.flight())
	c.ssthresh = e.ccReduce(c, flight) // (4.2): FlightSize/2 per RFC 5681 (4), or CUBIC's β
	c.cwnd = c.ssthresh
	st.ltBytes = 0
	c.recover, c.recoverGuard = c.sndNxt, true // (4.1) RecoveryPoint = HighData
	c.inRecovery, st.inRecovery = true, true
	st.prrDelivered, st.prrOut, st.recoverFS = 0, 0, c.flight()
	st.rescueSet = false
	if c.rack != nil {
		c.rack.tlpOut = false
	}
	a, b := c.hole(0)
	end := MinSeq(b, a.Add(Size(c.segMSS())))
	if c.finSent && b == c.finSeq()+1 && end.GreaterEq(c.finSeq()) {
		end = b
	}
	if c.sk().rackOn {
		// (4.3) with RACK: the first segment it marked lost.
		if s, e, ok := c.rackFirstLost(); ok {
			a, end = s, e
		}
	}
	e.explain(c.id, CodeSACKRecovery, ActionAccepted, Field{"SEG.SEQ", uint64(a)}, Field{"DUPACKS", uint64(c.dupAcks)},
		Field{"RECOVERY.POINT", uint64(c.recover - 1)}, Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"FLIGHT", uint64(flight)}, Field{"PIPE", uint64(pipe)})
	if a.LessThan(end) {
		e.sendRange(c, a, end, true) // (4.3)
		st.highRxt, st.rescueRxt, st.rescueSet = MaxSeq(st.highRxt, end), end-1, true
		st.prrOut += uint32(end.Sub(a))
	}
	c.setPipe() // (4.4)
	e.prr(c, acked+st.newly)
}

// prr is RFC 6937 §3 on an ACK during recovery: it sets cwnd to pipe plus
// the segments PRR allows now (sndcnt). With Config.Recovery.NoPRR, cwnd
// stays at ssthresh and RFC 6675 alone decides.
func (e *Engine) prr(c *conn, delivered uint32) {
	if e.cfg.Recovery.NoPRR {
		return
	}
	st := c.sk()
	st.prrDelivered += delivered
	pipe, ss := int64(st.pipe), int64(c.ssthresh)
	var sndcnt int64
	if pipe > ss {
		// Proportional rate reduction: CEIL(prr_delivered·ssthresh/RecoverFS) - prr_out.
		fs := int64(max(st.recoverFS, 1))
		sndcnt = (int64(st.prrDelivered)*ss+fs-1)/fs - int64(st.prrOut)
	} else {
		limit := int64(st.prrDelivered) - int64(st.prrOut) // PRR-CRB
		if !e.cfg.Recovery.PRRConservative {
			limit = max(limit, int64(delivered)) + int64(c.effMSS()) // PRR-SSRB
		}
		sndcnt = min(ss-pipe, limit)
	}
	sndcnt = max(sndcnt, 0)
	c.cwnd = uint32(pipe + sndcnt)
	e.explain(c.id, CodePRR, ActionInfo, Field{"DELIVERED", uint64(delivered)}, Field{"PRR.DELIVERED", uint64(st.prrDelivered)},
		Field{"PRR.OUT", uint64(st.prrOut)}, Field{"PIPE", uint64(pipe)}, Field{"SSTHRESH", uint64(ss)}, Field{"SNDCNT", uint64(sndcnt)})
}

// sackOnTimeout ends SACK recovery on a retransmission timeout and drops
// the scoreboard: the receiver may have reneged (RFC 2018 §8), and RFC
// 6675 §5.1 holds off a new recovery until RecoveryPoint (set by the
// caller to HighData) is acknowledged. SACK blocks arriving after the
// timeout rebuild the board, and go-back-N skips what they cover. Under
// rto_keep_sack the board stays unless the receiver reneged.
func (e *Engine) sackOnTimeout(c *conn) {
	if !e.sackOn(c) {
		return
	}
	st := c.sk()
	// The receiver reneged if it SACKed SND.UNA itself, which it would
	// have acknowledged had it kept it (Linux's test too).
	keep := e.cfg.Recovery.RTOKeepSACK && len(st.board) > 0 && c.sndUna.LessThan(st.board[0].Start)
	switch {
	case keep:
		e.explain(c.id, CodeSACKScoreboardKept, ActionInfo, Field{"BLOCKS", uint64(len(st.board))}, Field{"SND.UNA", uint64(c.sndUna)},
			Field{"RECOVERY.POINT", uint64(c.sndNxt - 1)})
	case len(st.board) > 0 || st.inRecovery:
		e.explain(c.id, CodeSACKScoreboardCleared, ActionInfo, Field{"BLOCKS", uint64(len(st.board))}, Field{"RECOVERY.POINT", uint64(c.sndNxt - 1)})
	}
	if !keep {
		clear(st.board)
		st.board = st.board[:0]
	}
	e.rackOnTimeout(c, keep)
	st.inRecovery, st.rescueSet, st.rtoGuard = false, false, true
	st.highRxt, st.pipe, st.ltBytes = c.sndUna, 0, 0
}

// sackedEdge moves the right edge of a go-back-N window past the SACKed
// data below it, within the peer's window: under rto_keep_sack, data the
// receiver holds does not take up cwnd after a timeout, as Linux counts
// packets in flight without the SACKed ones.
func (c *conn) sackedEdge(edge Seq) Seq {
	for _, b := range c.sk().board {
		if !b.Start.LessThan(edge) {
			break
		}
		if b.End.GreaterThan(c.sndUna) {
			edge = edge.Add(b.End.Sub(MaxSeq(b.Start, c.sndUna)))
		}
	}
	return MinSeq(edge, c.sndUna.Add(Size(c.sndWnd)))
}

// sackSkip returns the first sequence number at or after seq that the
// board does not cover, and where the next SACKed range starts (SND.NXT if
// none): go-back-N after a timeout resends only the holes.
func (c *conn) sackSkip(seq Seq) (Seq, Seq) {
	for _, b := range c.sk().board {
		if b.End.LessEq(seq) {
			continue
		}
		if b.Start.LessEq(seq) {
			seq = b.End
			continue
		}
		return seq, b.Start
	}
	return seq, c.sndNxt
}

// eifelOnTimeout arms the Eifel detection algorithm (RFC 3522 §2) on the
// first timeout-based retransmission of the oldest outstanding segment,
// when timestamps are on:
// it remembers the TSval the retransmission carries and, for the response
// (RFC 4015 §2), pipe_prev = max(FlightSize, ssthresh) before the timeout.
func (e *Engine) eifelOnTimeout(c *conn) {
	if !c.tsOK || e.cfg.Recovery.NoEifel {
		return
	}
	s := c.ccs()
	if c.retries != 1 {
		return // a later timeout keeps the first retransmission's RetransmitTS
	}
	s.eifelArmed, s.eifelFast, s.retransmitTS = true, false, e.tsVal(c)
	s.pipePrev = pipePrevAtTimeout(c)
}

// eifelOnAck is the detection and response on the first ACK of new data
// after the timeout: a TSecr older than RetransmitTS echoes the original
// transmission, so the timeout was spurious (RFC 3522 §2). The response
// (RFC 4015 §2) resumes with new data instead of go-back-N, sets ssthresh
// to pipe_prev and cwnd to FlightSize + min(bytes acknowledged, IW), and
// drops the RTO backoff.
func (e *Engine) eifelOnAck(c *conn, seg *Segment, acked uint32) {
	s := c.cc
	if s == nil || !s.eifelArmed {
		return
	}
	s.eifelArmed = false
	o := &seg.Options
	if !o.HasTimestamp || int32(o.TSEcr-s.retransmitTS) >= 0 {
		return
	}
	if s.eifelFast {
		e.spuriousFastRetransmit(c, seg, acked)
		return
	}
	e.spuriousRTOResponse(c, seg.Ack, acked, s.pipePrev)
	e.explain(c.id, CodeSpuriousRTO, ActionAccepted, Field{"SEG.TSECR", uint64(o.TSEcr)}, Field{"RETRANSMIT.TS", uint64(s.retransmitTS)},
		Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"CWND", uint64(c.cwnd)}, Field{"RTO.MS", uint64(c.rto / time.Millisecond)})
}

// pipePrevAtTimeout is pipe_prev = max(FlightSize, ssthresh) at a timeout
// (RFC 4015 §2 step 0; FlightSize alone while ssthresh is still the
// initial infinity), with FlightSize no larger than cwnd: with SACK,
// SND.NXT - SND.UNA counts data the receiver already holds, which under
// reordering is many windows, and restoring it would inflate cwnd on
// every spurious timeout.
func pipePrevAtTimeout(c *conn) uint32 {
	flight := min(c.flight(), c.cwnd)
	if c.ssthresh >= 1<<31-1 {
		return flight
	}
	return max(flight, c.ssthresh)
}

// spuriousRTOResponse is the Eifel response (RFC 4015 §2) to a timeout
// found spurious, by Eifel detection or by F-RTO (RFC 5682 §2.1 step 3b
// names RFC 4015 as the response): resume with new data instead of
// go-back-N, ssthresh = pipe_prev, cwnd = FlightSize (at most pipe_prev)
// + min(acked, IW), and the RTO without its backoff. una is the ACK's
// SND.UNA.
func (e *Engine) spuriousRTOResponse(c *conn, una Seq, acked, pipePrev uint32) {
	flight := uint32(c.sndNxt.Sub(una))
	iw := e.initialCwnd(c)
	c.ssthresh = pipePrev
	// FlightSize counts SACKed data, so under reordering it can be many
	// windows: the window restored grows at most by min(acked, IW) over
	// the one before the timeout (pipe_prev, itself from a FlightSize no
	// larger than cwnd).
	c.cwnd = min(flight, pipePrev) + min(acked, iw)
	c.rtxNxt = c.sndNxt // no more go-back-N
	c.sk().rtoGuard, c.recoverGuard = false, false
	c.retransmitted = false
	c.rto = min(max(c.srtt+max(time.Millisecond, 4*c.rttvar), e.cfg.MinRTO), e.cfg.MaxRTO)
	if c.cc != nil {
		c.cc.frto.step = 0 // one detection is enough
	}
}

// eifelOnFastRetransmit arms the Eifel detection algorithm (RFC 3522 §2:
// "the first retransmission of the oldest outstanding segment", a fast
// retransmit as much as a timeout's) as SACK loss recovery starts, when
// timestamps are on: RetransmitTS is the TSval the fast retransmission
// carries, and for the response what the reduction will change (cwnd,
// ssthresh, CUBIC's curve), in place of RFC 4015 §2 step 0's pipe_prev.
func (e *Engine) eifelOnFastRetransmit(c *conn) {
	if !c.tsOK || e.cfg.Recovery.NoEifel {
		return
	}
	s := c.ccs()
	s.eifelArmed, s.eifelFast, s.retransmitTS = true, true, e.tsVal(c)
	// FlightSize counts SACKed data and, with SACK, may exceed cwnd many
	// times over under reordering: restoring it would inflate cwnd on
	// every undo. The window before the reduction is cwnd itself.
	ss := c.ssthresh
	if ss >= 1<<31-1 {
		ss = c.cwnd // from slow start: continue in congestion avoidance
	}
	s.undo = ccUndo{cwnd: c.cwnd, ssthresh: ss, curve: s.cubicCurve}
}

// spuriousFastRetransmit is the Eifel response (RFC 4015 §2) to a fast
// retransmit the first ACK of new data after it shows to be spurious: its
// TSecr echoes the original transmission, which was only reordered. Loss
// recovery ends; unless the ACK carries ECE (step 4: the network did mark
// congestion) ssthresh = pipe_prev and cwnd = FlightSize + min(bytes
// acknowledged, IW), except that neither exceeds what the reduction took:
// cwnd = max(cwnd, cwnd before), ssthresh = max(ssthresh, ssthresh
// before), and CUBIC's W_max, K and epoch as they were (RFC 9438 §4.9).
// FlightSize counts SACKed data, so restoring it would grow cwnd with
// every reordering. eifelArmed is cleared, so this happens once per
// reduction. Unlike after a timeout nothing was resent beyond the one
// segment, so there is no go-back-N to stop (step 3 is for timeouts).
func (e *Engine) spuriousFastRetransmit(c *conn, seg *Segment, acked uint32) {
	s, st := c.cc, c.sk()
	ece := seg.Flags&FlagECE != 0 && s.ecn.ok
	if !ece {
		u := s.undo
		flight := uint32(c.sndNxt.Sub(seg.Ack))
		c.ssthresh = max(c.ssthresh, u.ssthresh)
		c.cwnd = max(c.cwnd, min(u.cwnd, flight+min(acked, e.initialCwnd(c))))
		s.cubicCurve = u.curve
	}
	st.inRecovery, c.inRecovery = false, false
	c.recoverGuard = false
	c.dupAcks, st.ltBytes = 0, 0
	if c.rack != nil {
		c.rack.exitRecovery()
	}
	e.explain(c.id, CodeSpuriousFastRetransmit, ActionAccepted, Field{"SEG.TSECR", uint64(seg.Options.TSEcr)}, Field{"RETRANSMIT.TS", uint64(s.retransmitTS)},
		Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"CWND", uint64(c.cwnd)}, Field{"ECE", b2u(ece)})
}
