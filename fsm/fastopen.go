package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
)

// TCP Fast Open, RFC 7413: a client that holds a cookie from an earlier
// connection to a server sends data on its SYN, and the server, if the
// cookie is valid, takes the data before the handshake completes.
//
//   - The option (§4.1.1): kind 34, length 2+N, N cookie bytes; N = 0 asks
//     for a cookie. The experimental form (kind 254, magic 0xF989, RFC 6994)
//     is parsed and written too.
//   - Server (§4.1.2, §4.2.2): the cookie is a keyed hash of the client's
//     IP address with Config.Secret (8 bytes, deterministic: a replayed
//     session gets the same cookie). A SYN with a valid cookie has its data
//     accepted, queued for the application in SYN-RECEIVED, and
//     acknowledged by the SYN,ACK; with a request it gets a cookie in the
//     SYN,ACK; with an invalid cookie the handshake is the normal one and
//     the SYN,ACK acknowledges only the ISN.
//   - Client (§4.1.3, §4.2.1, §4.2.2): a cookie cache per server address. A
//     connect with data sends SYN+cookie+data when a cookie is cached,
//     otherwise a cookie request (and the data after the handshake). A
//     SYN,ACK that acknowledges only the SYN makes the client send the data
//     again after the handshake. A server that answers a request without a
//     valid cookie, or a SYN's data without acknowledging it, is marked in
//     the cache so that later connections do not use Fast Open (§4.1.3.1
//     negative caching); the FreeBSD suite checks exactly this.
//
// Switches fastopen.client_enable and fastopen.server_enable (FreeBSD's
// sysctls) turn the roles on; a connection or listener also asks for it
// (ConnectFastOpen, SetListenerFastOpen), as TCP_FASTOPEN does.

const (
	optFastOpen       = 34     // TCP Fast Open Cookie (RFC 7413 §4.1.1)
	optExperimental   = 254    // RFC 6994 experimental option with an ExID
	fastOpenMagic     = 0xF989 // the ExID of experimental Fast Open (RFC 7413 §4.1.1)
	maxFastOpenCookie = maxOptionLen - 2

	// FastOpenCookieMin and FastOpenCookieMax bound a valid cookie (RFC 7413
	// §4.1.1: 4 to 16 bytes); FreeBSD also wants an even length.
	FastOpenCookieMin = 4
	FastOpenCookieMax = 16
	// FastOpenServerCookieLen is the length of the cookies this engine
	// makes: a 64-bit keyed hash (RFC 7413 §4.1.2 suggests 8 bytes).
	FastOpenServerCookieLen = 8
)

// setFastOpen records a Fast Open option with the given cookie bytes.
func (o *Options) setFastOpen(cookie []byte, exp bool) {
	o.FastOpen, o.FastOpenExp = true, exp
	o.Cookie = [FastOpenCookieMax]byte{}
	copy(o.Cookie[:], cookie)
	o.CookieLen = uint8(min(len(cookie), maxFastOpenCookie))
}

// parseExperimental reads a kind-254 option body; it reports whether it
// was Fast Open's (magic 0xF989).
func (o *Options) parseExperimental(body []byte) bool {
	if len(body) < 2 || binary.BigEndian.Uint16(body) != fastOpenMagic {
		return false
	}
	o.setFastOpen(body[2:], true)
	return true
}

// fastOpenLen is the encoded length of the Fast Open option after base
// bytes of other options; 0 when there is none or it does not fit.
func (o *Options) fastOpenLen(base int) int {
	if !o.FastOpen {
		return 0
	}
	n := 2 + int(o.CookieLen)
	if o.FastOpenExp {
		n += 2
	}
	if base+n > maxOptionLen {
		return 0
	}
	return n
}

// FastOpenFits reports whether the Fast Open option is encoded beside the
// other options (it is left out when it would pass 40 bytes).
func (o *Options) FastOpenFits() bool { return o.fastOpenLen(o.baseOptionsLen()) > 0 }

func (o *Options) appendFastOpen(b []byte) []byte {
	n := o.fastOpenLen(o.baseOptionsLen())
	if n == 0 {
		return b
	}
	if o.FastOpenExp {
		b = append(b, optExperimental, byte(n))
		b = binary.BigEndian.AppendUint16(b, fastOpenMagic)
	} else {
		b = append(b, optFastOpen, byte(n))
	}
	k := min(int(o.CookieLen), FastOpenCookieMax)
	b = append(b, o.Cookie[:k]...)
	for range int(o.CookieLen) - k {
		b = append(b, 0)
	}
	return b
}

// fastOpenText is the option in packetdrill's syntax: "FO", "FO 0102..",
// "FOEXP", "FOEXP 0102..".
func (o *Options) fastOpenText() string {
	s := "FO"
	if o.FastOpenExp {
		s = "FOEXP"
	}
	if o.CookieLen > 0 {
		ck := make([]byte, o.CookieLen)
		copy(ck, o.Cookie[:])
		s += " " + hex.EncodeToString(ck)
	}
	return s
}

// ValidFastOpenCookie reports whether a cookie length is one a client
// keeps: 4 to 16 bytes (RFC 7413 §4.1.1), and even, as FreeBSD requires.
func ValidFastOpenCookie(n int) bool {
	return n >= FastOpenCookieMin && n <= FastOpenCookieMax && n%2 == 0
}

// fastOpenConn is a connection's Fast Open state, a set of flags (one
// byte: an idle connection's memory is budgeted).
type fastOpenConn uint8

const (
	tfoClient    fastOpenConn = 1 << iota // an active open that uses Fast Open (ConnectFastOpen)
	tfoWithData                           // opened by ConnectFastOpen, Fast Open or not
	tfoRequested                          // our SYN asked for a cookie
	tfoHaveCk                             // our SYN carried a cached cookie
	tfoServer                             // passive: the SYN's cookie was valid and its data taken
	tfoListen                             // a listener that does Fast Open (SetListenerFastOpen)
	tfoGiveCk                             // passive: our SYN,ACK carries the client's cookie
)

func (f fastOpenConn) has(b fastOpenConn) bool { return f&b != 0 }

// synDataLen is how much data an active open's SYN carried: SND.NXT is past
// it while in SYN-SENT.
func (c *conn) synDataLen() uint32 { return uint32(c.sndNxt.Sub(c.iss + 1)) }

// fastOpenEntry is one server's line of the client's cookie cache.
type fastOpenEntry struct {
	cookie   [FastOpenCookieMax]byte
	n        uint8
	mss      uint16 // the server's MSS when the cookie came (RFC 7413 §4.1.3)
	disabled bool   // the server did not take Fast Open: connect plainly (§4.1.3.1)
}

// FastOpenCookie returns the cookie a client of this engine holds for a
// server address, if any.
func (e *Engine) FastOpenCookie(server netip.Addr) ([]byte, bool) {
	ent, ok := e.tfoCache[server]
	if !ok || ent.n == 0 {
		return nil, false
	}
	return append([]byte(nil), ent.cookie[:ent.n]...), true
}

// ConnectFastOpen is an active open with data, as sendto(MSG_FASTOPEN) or
// a connect on a TCP_FASTOPEN socket followed by a write: it queues data
// (returning how much the send buffer took) and sends the SYN. With
// Fast Open on (switch fastopen.client_enable) and a cookie cached for
// the server, the SYN carries the cookie and as much of the data as one
// segment holds (RFC 7413 §4.2.2); without a cookie it asks for one and
// the data waits for the handshake (§4.2.1); a server marked as not
// taking Fast Open gets a plain SYN (§4.1.3.1).
func (e *Engine) ConnectFastOpen(local, remote netip.AddrPort, data []byte) (EndpointID, int, error) {
	c, err := e.openActive(local, remote)
	if err != nil {
		return 0, 0, err
	}
	n := 0
	c.tfo |= tfoWithData
	if len(data) > 0 {
		n = c.sndBuf.write(data, e.cfg.SendBuffer, &e.sndSpare)
	}
	if !e.cfg.FastOpenClient {
		e.explain(c.id, CodeFastOpenClientOff, ActionInfo)
	} else if ent := e.tfoCache[remote.Addr()]; ent.disabled {
		e.explain(c.id, CodeFastOpenClientDisabled, ActionInfo)
	} else {
		c.tfo |= tfoClient
		if ent.n > 0 {
			c.tfo |= tfoHaveCk
		} else {
			c.tfo |= tfoRequested
		}
	}
	e.sendSyn(c)
	return c.id, n, nil
}

// fastOpenSyn adds the option (and data) to an active open's SYN. A
// retransmitted SYN carries the same data again: SND.NXT stays past it, so
// a late SYN,ACK that acknowledges the first SYN's data is still
// acceptable (RFC 9293 §3.10.7.3 first check).
func (e *Engine) fastOpenSyn(c *conn, s *Segment) {
	if !c.tfo.has(tfoClient) {
		return
	}
	ent := e.tfoCache[c.remote.Addr()]
	if !c.tfo.has(tfoHaveCk) {
		s.Options.setFastOpen(nil, false)
		e.explain(c.id, CodeFastOpenCookieRequest, ActionInfo)
		return
	}
	s.Options.setFastOpen(ent.cookie[:ent.n], false)
	if c.sndBuf.Len() == 0 {
		e.explain(c.id, CodeFastOpenSynCookie, ActionInfo, Field{"COOKIE.LEN", uint64(ent.n)}, Field{"SEG.LEN", 0})
		return
	}
	mss := int(ent.mss)
	if mss == 0 {
		mss = int(defaultMSS(c.remote.Addr()))
	}
	n := min(c.sndBuf.Len(), mss)
	if cap(e.scratch) < n {
		e.scratch = make([]byte, max(n, 1<<16))
	}
	s.Payload = e.scratch[:n]
	c.sndBuf.peek(0, s.Payload)
	c.sndNxt = c.iss.Add(Size(1 + n))
	if c.rtxNxt.LessThan(c.sndNxt) {
		c.rtxNxt = c.sndNxt
	}
	e.explain(c.id, CodeFastOpenSynCookie, ActionInfo, Field{"COOKIE.LEN", uint64(ent.n)}, Field{"SEG.LEN", uint64(n)})
}

// fastOpenSynAck runs on an acceptable SYN,ACK in SYN-SENT, before
// SND.UNA moves: it updates the cookie cache from the SYN,ACK's option,
// takes the data the SYN,ACK acknowledged out of the send buffer, and
// rewinds SND.NXT over data it did not acknowledge (RFC 7413 §4.2.2).
func (e *Engine) fastOpenSynAck(c *conn, seg *Segment) {
	if !c.tfo.has(tfoClient) {
		return
	}
	if e.tfoCache == nil {
		e.tfoCache = map[netip.Addr]fastOpenEntry{}
	}
	addr := c.remote.Addr()
	ent := e.tfoCache[addr]
	o := &seg.Options
	synData := c.synDataLen()
	dataAcked := uint32(0)
	if synData > 0 {
		dataAcked = min(uint32(seg.Ack.Sub(c.iss+1)), synData)
	}
	rejected := synData > 0 && dataAcked < synData
	switch {
	case o.FastOpen && ValidFastOpenCookie(int(o.CookieLen)):
		ent = fastOpenEntry{n: o.CookieLen, mss: c.sndMSS}
		copy(ent.cookie[:], o.Cookie[:o.CookieLen])
		e.explain(c.id, CodeFastOpenCookieCached, ActionAccepted, Field{"COOKIE.LEN", uint64(o.CookieLen)})
	case rejected || c.tfo.has(tfoRequested):
		// A request answered without a valid cookie, or data not taken:
		// the server does not do Fast Open for us (§4.1.3.1).
		ent = fastOpenEntry{disabled: true}
		cl := uint64(0)
		if o.FastOpen {
			cl = uint64(o.CookieLen)
		}
		e.explain(c.id, CodeFastOpenServerNoTFO, ActionInfo, Field{"FO", b2u(o.FastOpen)}, Field{"COOKIE.LEN", cl})
	case o.FastOpen:
		e.explain(c.id, CodeFastOpenCookieIgnored, ActionDropped, Field{"COOKIE.LEN", uint64(o.CookieLen)})
	}
	e.tfoCache[addr] = ent
	if synData == 0 {
		return
	}
	if dataAcked > 0 {
		c.sndBuf.discard(int(dataAcked))
		if c.sndBuf.Len() == 0 {
			c.sndBuf.release(&e.sndSpare)
		}
	}
	if rejected {
		c.sndNxt = seg.Ack
		e.explain(c.id, CodeFastOpenDataNotAcked, ActionQueued, Field{"SEG.ACK", uint64(seg.Ack)},
			Field{"ISS", uint64(c.iss)}, Field{"SYN.DATA", uint64(synData)})
	} else {
		e.explain(c.id, CodeFastOpenDataAcked, ActionAccepted, Field{"SEG.ACK", uint64(seg.Ack)},
			Field{"SYN.DATA", uint64(synData)})
	}
}

// fastOpenEstablished sends what a Fast Open client owes once its
// SYN,ACK has made it ESTABLISHED: queued data goes at once carrying the
// ACK, as FreeBSD and Linux send it, rather than after a bare ACK. It
// reports whether it handled the sending.
func (e *Engine) fastOpenEstablished(c *conn) bool {
	if !c.tfo.has(tfoWithData) {
		return false
	}
	n := len(e.ready.Packets)
	e.output(c)
	if len(e.ready.Packets) == n {
		e.sendAck(c)
	}
	return true
}

// fastOpenServerCookie is the cookie this engine gives a client address:
// SipHash of the addresses keyed with Config.Secret (RFC 7413 §4.1.2:
// the server's secret and the client's IP), 8 bytes.
func (e *Engine) fastOpenServerCookie(client, server netip.Addr) [FastOpenServerCookieLen]byte {
	h := e.hashTuple(Tuple{netip.AddrPortFrom(server, 0), netip.AddrPortFrom(client, 0)}, 'f')
	var ck [FastOpenServerCookieLen]byte
	binary.BigEndian.PutUint64(ck[:], h)
	return ck
}

// FastOpenServerCookie is the cookie a server of this engine gives a
// client address (for tests and tools that play the client).
func (e *Engine) FastOpenServerCookie(client, server netip.Addr) []byte {
	ck := e.fastOpenServerCookie(client, server)
	return ck[:]
}

func init() {
	switches = append(switches,
		boolSwitch("fastopen.client_enable", "1: the TCP Fast Open client role is on (RFC 7413 §4.1.3, §4.2): a connect with data (ConnectFastOpen; sendto with MSG_FASTOPEN or on a TCP_FASTOPEN socket) asks for a cookie or sends its data on the SYN with the cached one. 0: such a connect is a plain one. RFC 7413 is Experimental and opt-in; FreeBSD's net.inet.tcp.fastopen.client_enable, 1 by default.",
			func(c *Config) *bool { return &c.FastOpenClient }),
		boolSwitch("fastopen.server_enable", "1: the TCP Fast Open server role is on for listeners that ask for it (SetListenerFastOpen; TCP_FASTOPEN on the listening socket): cookies are given on request, and a SYN's data with a valid cookie is accepted before the handshake completes (RFC 7413 §4.1.2, §4.2.2). 0: the option is ignored. FreeBSD's net.inet.tcp.fastopen.server_enable, 0 by default.",
			func(c *Config) *bool { return &c.FastOpenServer }),
	)
}

// SetListenerFastOpen turns the Fast Open server role on or off for a
// listener, as TCP_FASTOPEN on a listening socket does; it takes effect
// only with the switch fastopen.server_enable on.
func (e *Engine) SetListenerFastOpen(id EndpointID, on bool) error {
	l, err := e.lookup(id)
	if err != nil {
		return err
	}
	if l.lq == nil {
		return ErrNotListener
	}
	if on {
		l.tfo |= tfoListen
	} else {
		l.tfo &^= tfoListen
	}
	return nil
}

// fastOpenListen runs on a SYN a listener takes, after the child c is
// made and before its SYN,ACK is sent (RFC 7413 §4.2.2, server side). It
// returns the segment whose text is still to be queued the normal way:
// seg itself, or a copy without the data that was taken (valid cookie) or
// dropped (invalid cookie).
func (e *Engine) fastOpenListen(l, c *conn, seg *Segment) *Segment {
	o := &seg.Options
	if !o.FastOpen {
		return seg
	}
	if !e.cfg.FastOpenServer || !l.tfo.has(tfoListen) {
		e.explain(c.id, CodeFastOpenServerOff, ActionInfo)
		return seg
	}
	want := e.fastOpenServerCookie(c.remote.Addr(), c.local.Addr())
	if o.CookieLen == 0 {
		c.tfo |= tfoGiveCk
		e.explain(c.id, CodeFastOpenCookieSent, ActionAnswered, Field{"COOKIE.LEN", FastOpenServerCookieLen})
		return seg
	}
	if int(o.CookieLen) != FastOpenServerCookieLen || [FastOpenServerCookieLen]byte(o.Cookie[:FastOpenServerCookieLen]) != want {
		c.tfo |= tfoGiveCk
		e.explain(c.id, CodeFastOpenCookieInvalid, ActionDropped, Field{"COOKIE.LEN", uint64(o.CookieLen)},
			Field{"SEG.LEN", uint64(len(seg.Payload))}, Field{"RCV.NXT", uint64(c.rcvNxt)})
		e.explain(c.id, CodeFastOpenCookieSent, ActionAnswered, Field{"COOKIE.LEN", FastOpenServerCookieLen})
		trimmed := *seg
		trimmed.Payload = nil
		return &trimmed
	}
	c.tfo |= tfoServer
	n := 0
	if len(seg.Payload) > 0 {
		n = c.rcvBuf.write(seg.Payload, e.cfg.RecvBuffer, &e.rcvSpare)
		c.rcvNxt = c.rcvNxt.Add(Size(n))
	}
	e.explain(c.id, CodeFastOpenCookieValid, ActionAccepted, Field{"SEG.LEN", uint64(n)}, Field{"RCV.NXT", uint64(c.rcvNxt)})
	// The connection can be accepted and read at once, before the
	// handshake completes (§4.2.2: "the server can deliver the data to
	// the application").
	if q := l.lq; len(q.acceptQueue) < q.acceptLimit {
		q.remove(c)
		q.acceptQueue = append(q.acceptQueue, c)
		c.inAcceptQueue = true
		e.event(l, EventAcceptReady)
	}
	if n > 0 {
		e.event(c, EventDataReadable)
	}
	trimmed := *seg
	trimmed.Payload = nil
	return &trimmed
}

// fastOpenSynAckOption puts the client's cookie on a passive open's
// SYN,ACK when the SYN asked for it or had a wrong one (RFC 7413 §4.1.2).
func (e *Engine) fastOpenSynAckOption(c *conn, s *Segment) {
	if !c.tfo.has(tfoGiveCk) {
		return
	}
	ck := e.fastOpenServerCookie(c.remote.Addr(), c.local.Addr())
	s.Options.setFastOpen(ck[:], false)
}
