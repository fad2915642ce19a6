package fsm

// F-RTO, RFC 5682: spurious retransmission timeout detection without
// timestamps. After a timeout the sender retransmits the first segment
// (step 1); if the first ACK after it advances SND.UNA, it sends up to two
// new segments instead of going back N (step 2); the second ACK then tells
// whether the original segments were only delayed (spurious: it
// acknowledges data that was never retransmitted) or lost (genuine: a
// duplicate ACK, or, with SACK, only the new segments acknowledged). The
// SACK-enhanced variant (§3) is used where SACK is on, the basic one
// (§2.1) otherwise. A spurious timeout gets the Eifel response (RFC 4015
// §2, spuriousRTOResponse in recovery.go).

// frtoState is F-RTO's state, kept in ccState.
type frtoState struct {
	step        uint8 // 0: not running; 2, 3: waiting for the ACK of that step
	sack        bool  // SACK-enhanced variant (RFC 5682 §3)
	rtoRecovery bool  // RTO recovery under way: SND.UNA has not reached recover
	recover     Seq   // SND.NXT at the timeout (one past "recover")
	rtxEnd      Seq   // end of the segment retransmitted in step 1
	rp          Seq   // SND.NXT at step 2 (one past RecoveryPoint)
	pipePrev    uint32
}

// frto reasons for FRTO_CONVENTIONAL.
const (
	frtoRevertRecover = 1 + iota
	frtoRevertDup
	frtoRevertPartial
	frtoRevertNoData
)

// frtoOnTimeout is step 1, called on a data retransmission timeout before
// the congestion response, so pipe_prev (RFC 4015 §2: max(FlightSize,
// ssthresh)) is the state the response may restore.
func (e *Engine) frtoOnTimeout(c *conn) {
	if !e.cfg.Recovery.FRTO {
		return
	}
	f := &c.ccs().frto
	if f.rtoRecovery && c.sndUna.LessThan(f.recover) {
		// §2.1 (1): already in RTO recovery and recover >= SND.UNA.
		e.explain(c.id, CodeFRTONotEntered, ActionInfo, Field{"SND.UNA", uint64(c.sndUna)},
			Field{"RECOVER", uint64(f.recover - 1)}, Field{"NEW.RECOVER", uint64(c.sndNxt - 1)})
		f.step, f.recover = 0, c.sndNxt
		return
	}
	f.step, f.rtoRecovery, f.recover, f.sack = 2, true, c.sndNxt, e.sackOn(c)
	f.rtxEnd = MinSeq(c.sndNxt, c.sndUna.Add(Size(c.segMSS())))
	f.pipePrev = pipePrevAtTimeout(c)
	e.explain(c.id, CodeFRTOStart, ActionInfo, Field{"VARIANT", b2u(f.sack)}, Field{"SND.UNA", uint64(c.sndUna)},
		Field{"RECOVER", uint64(f.recover - 1)}, Field{"PIPE.PREV", uint64(f.pipePrev)})
}

// frtoOnAck runs steps 2 and 3 on an ACK that advanced SND.UNA (acked new
// bytes), after RFC 5681's and RFC 6675's processing of it.
func (e *Engine) frtoOnAck(c *conn, seg *Segment, acked uint32) {
	if c.cc == nil {
		return
	}
	f := &c.cc.frto
	if f.rtoRecovery && c.sndUna.GreaterEq(f.recover) {
		f.rtoRecovery = false
	}
	switch f.step {
	case 2:
		e.frtoStep2(c, seg)
	case 3:
		e.frtoStep3(c, seg, acked)
	}
}

// frtoOnDup runs steps 2 and 3 on a duplicate ACK (SND.UNA unchanged,
// data outstanding, no text, SYN or FIN).
func (e *Engine) frtoOnDup(c *conn, seg *Segment) {
	if c.cc == nil || c.cc.frto.step == 0 || len(seg.Payload) > 0 || seg.Flags&(FlagSYN|FlagFIN) != 0 || c.flight() == 0 {
		return
	}
	f := &c.cc.frto
	switch {
	case f.step == 2 && f.sack:
		// §3 (2): duplicate ACKs before the retransmission's ACK only
		// update the scoreboard; stay in step 2.
	case f.step == 2:
		e.frtoConventional(c, seg, frtoRevertDup) // §2.1 (2a)
	default:
		e.frtoStep3(c, seg, 0)
	}
}

// frtoStep2 is step 2 on the first ACK after the timeout that advances
// SND.UNA.
func (e *Engine) frtoStep2(c *conn, seg *Segment) {
	f := &c.cc.frto
	switch {
	case seg.Ack.GreaterEq(f.recover):
		e.frtoConventional(c, seg, frtoRevertRecover) // (2a): nothing left to judge
		return
	case !f.sack && seg.Ack.LessThan(f.rtxEnd):
		e.frtoConventional(c, seg, frtoRevertPartial) // §2.1 (2a)
		return
	case !c.newDataSendable():
		e.frtoConventional(c, seg, frtoRevertNoData) // (2b): refrain from step 3
		return
	}
	// (2b): up to two new segments; output sends them from SND.NXT.
	mss := uint32(c.effMSS())
	f.step, f.rp = 3, c.sndNxt
	c.rtxNxt = c.sndNxt
	c.cwnd = c.flight() + 2*mss
	c.dupAcks = 0 // the go-back-N duplicates of RFC 6675 §5.1 count no more
	e.explain(c.id, CodeFRTONewData, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"RECOVER", uint64(f.recover - 1)},
		Field{"CWND", uint64(c.cwnd)}, Field{"RECOVERY.POINT", uint64(f.rp - 1)})
}

// frtoStep3 is step 3 on the second ACK: acked new bytes (0 for a
// duplicate ACK).
func (e *Engine) frtoStep3(c *conn, seg *Segment, acked uint32) {
	f := &c.cc.frto
	var newly uint32
	if c.sack != nil {
		newly = c.sack.newly
	}
	high := seg.Ack // the highest sequence number the ACK or its SACK blocks cover
	for i := 0; i < int(seg.Options.NumSACK) && i < MaxSACKBlocks; i++ {
		if b := seg.Options.SACK[i]; b.End.GreaterThan(high) && b.End.LessEq(c.sndNxt) {
			high = b.End
		}
	}
	var spurious bool
	if f.sack {
		// §3 (3b): nothing beyond RecoveryPoint acknowledged, and data
		// not acknowledged before (cumulatively or SACKed) now is.
		spurious = high.LessEq(f.rp) && acked+newly > 0
	} else {
		spurious = acked > 0 // §2.1 (3b): the ACK advances the window
	}
	if spurious {
		e.spuriousRTOResponse(c, c.sndUna, acked+newly, f.pipePrev)
		f.rtoRecovery = false // (3b): recover = SND.UNA
		e.explain(c.id, CodeFRTOSpurious, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"SACKED", uint64(newly)},
			Field{"RECOVERY.POINT", uint64(f.rp - 1)}, Field{"SSTHRESH", uint64(c.ssthresh)}, Field{"CWND", uint64(c.cwnd)})
		return
	}
	// (3a): genuine; cwnd at most 3·SMSS and retransmit what is unacknowledged.
	f.step = 0
	c.cwnd = min(c.cwnd, 3*uint32(c.effMSS()))
	c.rtxNxt = c.sndUna
	c.dupAcks = 0
	e.explain(c.id, CodeFRTOGenuine, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)}, Field{"SACK.HIGH", uint64(high)},
		Field{"RECOVERY.POINT", uint64(f.rp - 1)}, Field{"CWND", uint64(c.cwnd)}, Field{"SND.UNA", uint64(c.sndUna)})
}

// frtoConventional ends F-RTO in step 2: conventional RTO recovery goes on
// as if F-RTO were off.
func (e *Engine) frtoConventional(c *conn, seg *Segment, reason uint64) {
	f := &c.cc.frto
	f.step = 0
	e.explain(c.id, CodeFRTOConventional, ActionInfo, Field{"REASON", reason}, Field{"SEG.ACK", uint64(seg.Ack)},
		Field{"RECOVER", uint64(f.recover - 1)}, Field{"CWND", uint64(c.cwnd)})
}
