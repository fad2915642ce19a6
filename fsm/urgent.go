package fsm

// Urgent data (RFC 9293 §3.8.5, RFC 6093). The urgent pointer marks a
// point in the stream: SEG.SEQ+SEG.UP is the sequence number of the octet
// following the urgent data (MUST-30; RFC 6093 §2 settles the old
// ambiguity that way). Urgent data stays in line, as RFC 6093 §5 asks of
// new applications; the engine keeps the receive urgent pointer RCV.UP as
// a sequence number, so urgent data may be of any length (MUST-31), tells
// the application when RCV.UP moves ahead (EventUrgent), and reports
// where the mark lies in what it can read (Engine.Urgent). What BSD
// sockets do with the last urgent octet (MSG_OOB, SIOCATMARK without
// SO_OOBINLINE) is switch oob_inline (oob.go).

// Urgent is the receive side's urgent state.
type Urgent struct {
	// Pending: urgent data arrived that the application has not read past.
	Pending bool
	// Pointer is RCV.UP, the sequence number after the urgent data.
	Pointer Seq
	// Before is how many bytes Receive returns before the pointer: once
	// they are read all urgent data has been read. It may exceed the bytes
	// readable now when the urgent data has not all arrived.
	Before int
	// Last is the last urgent octet (what BSD's recv(MSG_OOB) returns),
	// valid when LastOK: it has arrived and is not yet read (in the
	// stream, or out of band by ReceiveUrgent).
	Last   byte
	LastOK bool
}

// Urgent returns the receive side's urgent state of a connection.
func (e *Engine) Urgent(id EndpointID) (Urgent, error) {
	c, err := e.lookupConn(id)
	if err != nil {
		return Urgent{}, err
	}
	if !c.rcvUpSet {
		return Urgent{}, nil
	}
	read := c.readSeq()
	u := Urgent{Pointer: c.rcvUp}
	if !c.rcvUp.GreaterThan(read) {
		return u, nil // read past: no longer pending
	}
	u.Pending, u.Before = true, int(c.rcvUp.Sub(read))
	if off := u.Before - 1; off < c.rcvBuf.Len() {
		var b [1]byte
		c.rcvBuf.peek(off, b[:])
		u.Last, u.LastOK = b[0], !c.oobRead || c.opts.OOBInline
	}
	return u, nil
}

// readSeq is the sequence number of the next byte Receive returns.
func (c *conn) readSeq() Seq {
	end := c.rcvNxt
	if c.rcvFin {
		end-- // the FIN occupies a sequence number but no buffer space
	}
	return end - Seq(c.rcvBuf.Len())
}

// SendUrgent is SEND with the urgent flag (RFC 9293 §3.10.2): data is
// queued like Send's, and the send urgent pointer SND.UP moves to the
// octet after it. Every segment sent from below SND.UP carries URG and
// the pointer's offset, capped at 65535 when SND.UP lies further ahead
// (RFC 6093 §4: the pointer then advances in later segments), until
// SND.UNA passes SND.UP.
func (e *Engine) SendUrgent(id EndpointID, data []byte) (int, error) {
	n, err := e.Send(id, nil)
	if err != nil || len(data) == 0 {
		return n, err
	}
	c := e.byID[id]
	// Send with no data only validated: mark the pointer first, so the
	// segments Send emits now carry it.
	n = c.sndBuf.write(data, e.cfg.SendBuffer, &e.sndSpare)
	if n == 0 {
		return 0, ErrInsufficientResources
	}
	e.begin()
	c.sndUp, c.sndUpSet = c.sndBufSeq().Add(Size(c.sndBuf.Len())), true
	if c.state == Established || c.state == CloseWait {
		e.output(c)
	}
	return n, nil
}

// urgentArrives is the sixth step of RFC 9293 §3.10.7.4: in ESTABLISHED,
// FIN-WAIT-1 and FIN-WAIT-2, RCV.UP <- max(RCV.UP, SEG.UP), and the user
// is told if the urgent pointer is ahead of the data consumed.
func (e *Engine) urgentArrives(c *conn, seg *Segment) {
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		e.explain(c.id, CodeUrgentIgnored, ActionInfo, Field{"SEG.UP", uint64(seg.Urgent)})
		return
	}
	up := seg.Seq.Add(Size(seg.Urgent))
	if seg.Urgent == 0 || (c.rcvUpSet && !up.GreaterThan(c.rcvUp)) {
		// Zero points at SEG.SEQ itself: no urgent data in this segment.
		e.explain(c.id, CodeUrgentIgnored, ActionInfo, Field{"SEG.UP", uint64(seg.Urgent)})
		return
	}
	c.rcvUp, c.rcvUpSet, c.oobRead = up, true, false
	e.explain(c.id, CodeUrgentData, ActionAccepted, Field{"SEG.UP", uint64(seg.Urgent)}, Field{"RCV.UP", uint64(up)})
	if !c.opts.OOBInline {
		e.explain(c.id, CodeUrgentOutOfBand, ActionInfo, Field{"URG.SEQ", uint64(up - 1)}, Field{"RCV.UP", uint64(up)})
	}
	if up.GreaterThan(c.readSeq()) {
		e.event(c, EventUrgent)
	}
}

// urgentFlags sets URG and the urgent pointer on a segment sent from seq
// while SND.UP is ahead of it.
func (c *conn) urgentFlags(s *Segment) {
	if !c.sndUp.GreaterThan(c.sndUna) {
		c.sndUpSet = false // acknowledged: urgent mode is over
		return
	}
	if c.sndUp.GreaterThan(s.Seq) {
		s.Flags |= FlagURG
		s.Urgent = uint16(min(uint32(c.sndUp.Sub(s.Seq)), 65535))
	}
}
