package fsm

import "errors"

// Urgent data out of band, as BSD sockets give it without SO_OOBINLINE
// (switch oob_inline=0, per endpoint SockOpts.OOBInline). RFC 6093 §5
// asks new applications to keep urgent data in line, and the rfc profile
// does (oob_inline=1); FreeBSD and Linux take the last urgent octet, the
// one before RCV.UP, out of the normal stream: a read stops at the mark
// (the octet's place), reads after it skip the octet, and recv(MSG_OOB)
// returns it once (ReceiveUrgent). The octet stays in the receive buffer
// (it is counted in the window like any other) until a read passes it, so
// the only state is oobRead. An older urgent octet, superseded by a later
// pointer before it was read, stays in line, as on Linux (tcp_check_urg).

// ErrNoUrgent: no urgent octet to read out of band (none arrived, it was
// read already or the reader passed it, or it is in line): EINVAL.
var ErrNoUrgent = errors.New("no urgent data out of band")

// ErrUrgentNotYet: the urgent pointer is known but its last octet has not
// arrived yet: EWOULDBLOCK.
var ErrUrgentNotYet = errors.New("urgent data not yet arrived")

func init() {
	switches = append(switches, negBoolSwitch("oob_inline", "1: urgent data stays in line (RFC 6093 §5: new applications SHOULD NOT use urgent data, and if they do the urgent data is to be read in line; RFC 9293 §3.8.5 only asks that the application be told of the urgent pointer). 0: as BSD sockets without SO_OOBINLINE (FreeBSD tcp_pulloutofband, Linux tcp_urg): the last urgent octet is taken out of the normal stream, reads stop at the mark and skip it, and recv(MSG_OOB) returns it once (EINVAL when there is none or it was read, EWOULDBLOCK before it arrives). Per socket, setsockopt(SO_OOBINLINE) overrides it (SockOpts.OOBInline).",
		func(c *Config) *bool { return &c.OOBNoInline }))
}

// oobOffset is the offset in rcvBuf of the urgent octet held out of band,
// or -1 when none is: in line, no pointer, or read past. It may be beyond
// the buffer when the octet has not arrived.
func (c *conn) oobOffset() int {
	if c.opts.OOBInline || !c.rcvUpSet {
		return -1
	}
	read := c.readSeq()
	if !c.rcvUp.GreaterThan(read) {
		return -1
	}
	return int(c.rcvUp.Sub(read)) - 1
}

// readable is what Receive can return: the buffer less the octet held out
// of band.
func (c *conn) readable() int {
	n := c.rcvBuf.Len()
	if off := c.oobOffset(); off >= 0 && off < n {
		n--
	}
	return n
}

// receive reads for Receive: up to the mark when the urgent octet is
// held out of band, and past the octet (dropping it) when it is next,
// provided something follows it; otherwise the octet waits for
// ReceiveUrgent.
func (c *conn) receive(buf []byte) int {
	off := c.oobOffset()
	switch {
	case off < 0 || off >= c.rcvBuf.Len():
		return c.rcvBuf.read(buf)
	case off > 0:
		return c.rcvBuf.read(buf[:min(len(buf), off)])
	case c.rcvBuf.Len() == 1 || len(buf) == 0:
		return 0
	}
	c.rcvBuf.discard(1)
	return c.rcvBuf.read(buf)
}

// peek is Peek with the same rule as receive, without consuming.
func (c *conn) peekData(buf []byte) int {
	off := c.oobOffset()
	switch {
	case off < 0 || off >= c.rcvBuf.Len():
		return c.rcvBuf.peek(0, buf)
	case off > 0:
		return c.rcvBuf.peek(0, buf[:min(len(buf), off)])
	}
	return c.rcvBuf.peek(1, buf)
}

// ReceiveUrgent is recv(MSG_OOB): the urgent octet held out of band,
// consumed unless peek. ErrNoUrgent when the endpoint keeps urgent data
// in line, none is pending, or it was read; ErrUrgentNotYet before it
// arrives (FreeBSD tcp_usr_rcvoob, Linux tcp_recv_urg).
func (e *Engine) ReceiveUrgent(id EndpointID, peek bool) (byte, error) {
	c, err := e.lookupConn(id)
	if err != nil {
		return 0, err
	}
	off := c.oobOffset()
	switch {
	case off < 0 || c.oobRead:
		return 0, ErrNoUrgent
	case off >= c.rcvBuf.Len():
		return 0, ErrUrgentNotYet
	}
	var b [1]byte
	c.rcvBuf.peek(off, b[:])
	if !peek {
		c.oobRead = true
	}
	return b[0], nil
}

// AtMark is SIOCATMARK: the next octet of the stream is the last urgent
// octet (held out of band, or in line), as FreeBSD and Linux report it.
func (e *Engine) AtMark(id EndpointID) (bool, error) {
	c, err := e.lookupConn(id)
	if err != nil {
		return false, err
	}
	return c.rcvUpSet && c.rcvUp == c.readSeq()+1, nil
}
