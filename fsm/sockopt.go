package fsm

// Per-connection options. RFC 9293 asks that an application can, on one
// connection: turn Nagle off (§3.7.4, MUST-17), set R2 (§3.8.3, MUST-21)
// and choose the Differentiated Services field it sends (§3.9.1.9,
// MUST-48). Config holds the engine-wide defaults; SetSockOpts changes
// one endpoint, as setsockopt does. A connection accepted from a listener
// starts with the listener's options, as accept(2) does.

// SockOpts holds one endpoint's options.
type SockOpts struct {
	NoDelay bool // TCP_NODELAY: Nagle off (default Config.NoNagle)
	// MaxRetries is R2 as a count: retransmissions of one data segment or
	// FIN before the connection is aborted. 0 takes Config.MaxRetries.
	MaxRetries int
	// TrafficClass is the IPv4 TOS / IPv6 traffic class byte sent: the
	// DSCP in its top six bits (IP_TOS, IPV6_TCLASS). The two low bits,
	// the ECN field (RFC 3168 §5), are the engine's: 0, or ECT(0) on new
	// data when Config.Recovery.ECN negotiated it (ecn.go).
	TrafficClass uint8
	// OOBInline is SO_OOBINLINE: the last urgent octet stays in the
	// stream (default: switch oob_inline). Off, it is read only with
	// ReceiveUrgent, recv(MSG_OOB) (oob.go).
	OOBInline bool
}

func (c *Config) sockOptsDefaults() SockOpts {
	return SockOpts{NoDelay: c.NoNagle, MaxRetries: c.MaxRetries, OOBInline: !c.OOBNoInline}
}

// SockOpts returns an endpoint's options.
func (e *Engine) SockOpts(id EndpointID) (SockOpts, error) {
	c, err := e.lookup(id)
	if err != nil {
		return SockOpts{}, err
	}
	return c.opts, nil
}

// SetSockOpts changes an endpoint's options. The new traffic class applies
// to the next segment sent; RFC 9293 §3.9.1.9 lets it change during a
// connection (SHLD-21) though applications generally should not (SHLD-23).
func (e *Engine) SetSockOpts(id EndpointID, o SockOpts) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	if c.state == Closed {
		return e.closedErr(c)
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = e.cfg.MaxRetries
	}
	o.TrafficClass &^= 3
	e.begin()
	c.opts = o
	if o.TrafficClass != 0 {
		e.tclassSet = true
	}
	if !o.NoDelay {
		return nil
	}
	if c.state == Established || c.state == CloseWait {
		e.output(c) // data Nagle held back goes now
	}
	return nil
}
