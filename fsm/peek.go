package fsm

// Peek copies received data into buf without consuming it: what recv
// with MSG_PEEK does (POSIX; RFC 9293 §3.10.3 leaves the RECEIVE call's
// form to the system). It changes no state and emits nothing, so it is
// not an input of the replay log. Its results are Receive's: (0, nil)
// when nothing is ready yet, ErrConnectionClosing at end of file.
func (e *Engine) Peek(id EndpointID, buf []byte) (int, error) {
	c, err := e.lookupConn(id)
	if err != nil {
		return 0, err
	}
	if c.rcvBuf.Len() == 0 {
		switch {
		case c.state == Closed:
			return 0, e.closedErr(c)
		case c.rcvFin:
			return 0, ErrConnectionClosing
		}
		return 0, nil
	}
	return c.peekData(buf), nil // oob.go
}
