package fsm

import (
	"net/netip"
	"sort"
	"time"
)

// EndpointID names an endpoint (a listener or a connection) within an
// engine. IDs are assigned in order from 1 and never reused.
type EndpointID uint32

// Tuple is a connection's 4-tuple as seen from this side.
type Tuple struct{ Local, Remote netip.AddrPort }

// Packet is one IP packet the engine emitted.
type Packet struct {
	Endpoint EndpointID // 0 for replies on behalf of no endpoint (a RST from CLOSED)
	Time     time.Duration
	Src, Dst netip.Addr
	Segment  Segment // decoded view; Payload aliases Data
	Data     []byte  // the IP packet, ready for the wire
}

// Transition is a change of an endpoint's state.
type Transition struct {
	Endpoint EndpointID
	Time     time.Duration
	From, To State
	Cause    Code
}

// EventKind is what the application is told.
type EventKind uint8

const (
	EventEstablished  EventKind = iota + 1 // the handshake completed
	EventAcceptReady                       // a listener has a connection to accept
	EventDataReadable                      // data (or end-of-file) can be received
	EventPeerClosed                        // the peer's FIN arrived: "connection closing"
	EventReset                             // "connection reset"
	EventRefused                           // "connection refused"
	EventTimedOut                          // retransmissions gave up
	EventClosed                            // the endpoint reached CLOSED
	EventUrgent                            // urgent data arrived (RFC 9293 §3.8.5): see Engine.Urgent
)

var eventNames = [...]string{"", "ESTABLISHED", "ACCEPT_READY", "DATA_READABLE", "PEER_CLOSED", "CONNECTION_RESET", "CONNECTION_REFUSED", "TIMED_OUT", "CLOSED", "URGENT"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "UNKNOWN"
}

// Event tells the application something happened on an endpoint.
type Event struct {
	Endpoint EndpointID
	Kind     EventKind
}

// Ready is the batch of outputs since the last call to Ready. Its slices
// belong to the engine and stay valid until the next input after Ready
// returned them (the raft Ready contract): copy what you keep.
type Ready struct {
	Packets      []Packet
	Transitions  []Transition
	Events       []Event
	Explanations []Explanation
}

// Empty reports whether the batch has nothing in it.
func (r *Ready) Empty() bool {
	return len(r.Packets)+len(r.Transitions)+len(r.Events)+len(r.Explanations) == 0
}

// Engine is a deterministic TCP engine holding every endpoint of one
// session. It does no I/O and reads no clock: the host feeds it inputs and
// drains outputs with Ready. It is not safe for concurrent use.
type Engine struct {
	cfg        Config
	simOpenAck bool // simopen_dup_ack: the segment being processed is answered with an ACK after output
	now        time.Duration
	nextID     EndpointID
	conns      map[Tuple]*conn
	last       *conn // the connection conns last returned: a one-entry cache
	listeners  map[netip.AddrPort]*conn
	byID       map[EndpointID]*conn
	timers     timerHeap
	closed     []EndpointID // CLOSED endpoints still visible, oldest first
	live       int

	ready   Ready
	drained bool
	arena   []byte // backing store of emitted packets
	scratch []byte // payload assembly for segments taken from a ring

	rcvSpare, sndSpare spareBufs // buffers of emptied rings, for reuse
	tclassSet          bool      // some endpoint sends a non-zero traffic class (sockopt.go)
	inECN              uint8     // the IP ECN field of the packet Deliver is processing (ecn.go)
	retired            []*conn   // forgotten during this input
	free               []*conn   // forgotten earlier, zeroed, for newConn

	md5Keys  map[netip.Addr]string        // TCP-MD5 keys by peer (md5.go), copy on write
	tfoCache map[netip.Addr]fastOpenEntry // the Fast Open client's cookies by server (fastopen.go)
}

// maxFreeConns bounds the forgotten connections kept for reuse.
const maxFreeConns = 256

// New returns an engine with the given configuration (zero fields take
// their defaults) at time 0.
func New(cfg Config) *Engine {
	return &Engine{
		cfg:       cfg.Defaults(),
		conns:     make(map[Tuple]*conn),
		listeners: make(map[netip.AddrPort]*conn),
		byID:      make(map[EndpointID]*conn),
	}
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Now returns the engine's clock: the time since the session started.
func (e *Engine) Now() time.Duration { return e.now }

// Ready returns the outputs accumulated since the previous call.
func (e *Engine) Ready() Ready {
	if e.drained {
		return Ready{} // already handed out: nothing new since
	}
	e.drained = true
	return e.ready
}

// begin starts an input: outputs a host already drained are recycled.
func (e *Engine) begin() {
	if len(e.retired) > 0 {
		e.recycle()
	}
	if !e.drained {
		return
	}
	e.drained = false
	e.ready.Packets = e.ready.Packets[:0]
	e.ready.Transitions = e.ready.Transitions[:0]
	e.ready.Events = e.ready.Events[:0]
	e.ready.Explanations = e.ready.Explanations[:0]
	if cap(e.arena) > 1<<20 {
		e.arena = nil // do not pin a burst's memory forever
	}
	e.arena = e.arena[:0]
}

// Deliver submits one inbound IPv4 or IPv6 packet. A malformed packet is
// returned as a *ParseError and changes nothing; a segment with a bad
// checksum is dropped (and explained), as a real stack does.
func (e *Engine) Deliver(pkt []byte) error {
	if src, dst, icmp, ok := icmpPayload(pkt); ok {
		return e.DeliverICMP(src, dst, icmp) // icmp.go
	}
	src, dst, tcp, err := ParsePacket(pkt)
	if err != nil {
		return err
	}
	e.inECN = ipECN(pkt) // RFC 3168 §6.1.3: a CE mark (ecn.go)
	err = e.DeliverSegment(src, dst, tcp)
	e.inECN = 0
	return err
}

// DeliverSegment submits one inbound TCP segment sent from src to dst.
func (e *Engine) DeliverSegment(src, dst netip.Addr, tcp []byte) error {
	var seg Segment
	if err := parseSegment(tcp, &seg); err != nil {
		return err
	}
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return &ParseError{Layer: "tcp", Field: "addresses", Reason: "source and destination must both be IPv4 or both IPv6"}
	}
	e.begin()
	t := Tuple{Local: netip.AddrPortFrom(dst, seg.DstPort), Remote: netip.AddrPortFrom(src, seg.SrcPort)}
	c := e.connFor(t)
	if !TCPChecksumValid(src, dst, tcp) {
		var id EndpointID
		if c != nil {
			id = c.id
		}
		e.explain(id, CodeBadChecksum, ActionDropped, Field{"SEG.CHECKSUM", uint64(seg.Checksum)})
		return nil
	}
	if e.md5Drop(c, src, dst, tcp, &seg) { // md5.go, RFC 2385
		return nil
	}
	if !unicast(src) || !unicast(dst) || src.IsUnspecified() || dst.IsUnspecified() {
		// RFC 9293 §3.9.2.3 (MUST-57, MUST-63; RFC 1122 §4.2.3.10): a
		// segment to a broadcast or multicast address, or from an address
		// no host can have, is discarded silently, SYN or not: no state,
		// no reply.
		var id EndpointID
		if c != nil {
			id = c.id
		}
		e.explain(id, CodeBadAddress, ActionDropped)
		return nil
	}
	if seg.Flags&(FlagSYN|FlagFIN) == FlagSYN|FlagFIN && e.cfg.DropSynFin {
		var id EndpointID
		if c != nil {
			id = c.id
		}
		e.explain(id, CodeSynFinDropped, ActionDropped)
		return nil
	}
	switch {
	case c != nil:
		before := len(e.ready.Explanations)
		e.segmentArrives(c, &seg)
		if len(e.ready.Explanations) == before {
			// Every check passed and nothing changed (a duplicate ACK with
			// nothing outstanding, say): still say so.
			e.explain(c.id, CodeSegmentNoChange, ActionAccepted, Field{"SEG.SEQ", uint64(seg.Seq)}, Field{"SEG.ACK", uint64(seg.Ack)})
		}
	default:
		if l := e.listenerFor(t.Local); l != nil {
			e.listenArrives(l, t, &seg)
		} else {
			e.closedArrives(t, &seg)
		}
	}
	return nil
}

// connFor looks a connection up by 4-tuple. Segments come in runs for one
// connection, so the last hit is checked first: comparing two tuples is
// much cheaper than hashing one. e.last is always in conns under its own
// tuple; toClosed clears it when it deletes that entry.
func (e *Engine) connFor(t Tuple) *conn {
	if c := e.last; c != nil && c.local == t.Local && c.remote == t.Remote {
		return c
	}
	c := e.conns[t]
	if c != nil {
		e.last = c
	}
	return c
}

func (e *Engine) listenerFor(local netip.AddrPort) *conn {
	if l := e.listeners[local]; l != nil {
		return l
	}
	var any netip.Addr
	if local.Addr().Is4() {
		any = netip.IPv4Unspecified()
	} else {
		any = netip.IPv6Unspecified()
	}
	return e.listeners[netip.AddrPortFrom(any, local.Port())]
}

// Listen opens a listener on local (RFC 9293 §3.10.1 passive OPEN). An
// unspecified address (0.0.0.0 or ::) listens on every address. backlog is
// the accept queue limit (0: Config.AcceptQueue).
func (e *Engine) Listen(local netip.AddrPort, backlog int) (EndpointID, error) {
	if !local.Addr().IsValid() || local.Port() == 0 {
		return 0, ErrInvalidAddress
	}
	if e.listeners[local] != nil {
		return 0, ErrConnectionExists
	}
	if e.cfg.MaxEndpoints > 0 && e.live >= e.cfg.MaxEndpoints {
		return 0, ErrEndpointLimit
	}
	e.begin()
	if backlog <= 0 {
		backlog = e.cfg.AcceptQueue
	}
	l := e.newConn(local, netip.AddrPort{})
	l.lq = &listenQueues{synLimit: e.synLimit(backlog), acceptLimit: e.acceptLimit(backlog)} // linux_codes.go
	e.listeners[local] = l
	e.setState(l, Listen, CodeAppListen)
	e.explain(l.id, CodeAppListen, ActionAccepted, Field{"BACKLOG", uint64(backlog)})
	return l.id, nil
}

// Connect opens a connection from local to remote (active OPEN): it chooses
// the ISS, emits the SYN and enters SYN-SENT.
func (e *Engine) Connect(local, remote netip.AddrPort) (EndpointID, error) {
	c, err := e.openActive(local, remote)
	if err != nil {
		return 0, err
	}
	e.sendSyn(c)
	return c.id, nil
}

// openActive makes a connection in SYN-SENT with its ISS chosen; the
// caller sends the SYN (Connect, ConnectFastOpen).
func (e *Engine) openActive(local, remote netip.AddrPort) (*conn, error) {
	if !local.Addr().IsValid() || !remote.Addr().IsValid() || local.Port() == 0 || remote.Port() == 0 ||
		local.Addr().Is4() != remote.Addr().Is4() || local.Addr().IsUnspecified() || remote.Addr().IsUnspecified() ||
		!unicast(local.Addr()) || !unicast(remote.Addr()) {
		// RFC 9293 §3.9.1.1 (MUST-46): an OPEN to a broadcast or
		// multicast address is an error.
		return nil, ErrInvalidAddress
	}
	t := Tuple{local, remote}
	if e.conns[t] != nil {
		return nil, ErrConnectionExists
	}
	if e.cfg.MaxEndpoints > 0 && e.live >= e.cfg.MaxEndpoints {
		return nil, ErrEndpointLimit
	}
	e.begin()
	c := e.newConn(local, remote)
	e.initConn(c, e.isn(t))
	e.conns[t] = c
	e.setState(c, SynSent, CodeAppConnect)
	e.explain(c.id, CodeAppConnect, ActionAccepted, Field{"ISS", uint64(c.iss)})
	return c, nil
}

// Accept takes the oldest connection from a listener's accept queue.
func (e *Engine) Accept(id EndpointID) (EndpointID, error) {
	l, err := e.lookup(id)
	if err != nil {
		return 0, err
	}
	if l.lq == nil {
		return 0, ErrNotListener
	}
	if len(l.lq.acceptQueue) == 0 {
		return 0, ErrNoConnection
	}
	e.begin()
	q := l.lq.acceptQueue
	c := q[0]
	copy(q, q[1:]) // keep the capacity: accepting does not allocate
	q[len(q)-1] = nil
	l.lq.acceptQueue = q[:len(q)-1]
	c.parent, c.inAcceptQueue = nil, false
	l.lq.stats.Accepted++
	e.explain(c.id, CodeAppAccept, ActionAccepted)
	return c.id, nil
}

// Send queues data for transmission (RFC 9293 §3.10.2) and returns how much
// the send buffer took; ErrInsufficientResources if it took nothing.
func (e *Engine) Send(id EndpointID, data []byte) (int, error) {
	c, err := e.lookupConn(id)
	if err != nil {
		return 0, err
	}
	switch c.state {
	case SynSent, SynReceived, Established, CloseWait:
	case Closed:
		return 0, e.closedErr(c)
	default:
		return 0, ErrConnectionClosing
	}
	if c.finQueued {
		return 0, ErrConnectionClosing
	}
	if len(data) == 0 {
		return 0, nil
	}
	if e.sendWaitsForEstablished(c) {
		return 0, ErrInsufficientResources
	}
	n := c.sndBuf.write(data, e.cfg.SendBuffer, &e.sndSpare)
	if n == 0 {
		return 0, ErrInsufficientResources
	}
	e.begin()
	if c.state == Established || c.state == CloseWait {
		e.output(c)
	}
	return n, nil
}

// Receive copies received data into buf (RFC 9293 §3.10.3). It returns
// (0, nil) when nothing is ready yet, and ErrConnectionClosing once the
// peer's FIN has been read past (end of file).
func (e *Engine) Receive(id EndpointID, buf []byte) (int, error) {
	c, err := e.lookupConn(id)
	if err != nil {
		return 0, err
	}
	if c.state == Closed && c.rcvBuf.Len() == 0 {
		return 0, e.closedErr(c)
	}
	if c.rcvBuf.Len() == 0 {
		if c.rcvFin {
			return 0, ErrConnectionClosing
		}
		return 0, nil
	}
	e.begin()
	n := c.receive(buf) // oob.go: the urgent octet held out of band is skipped
	if c.rcvBuf.Len() == 0 {
		c.rcvBuf.release(&e.rcvSpare)
	}
	if c.state != Closed {
		e.maybeWindowUpdate(c)
	}
	return n, nil
}

// Readable returns the bytes ready to Receive.
func (e *Engine) Readable(id EndpointID) int {
	if c := e.byID[id]; c != nil {
		return c.readable()
	}
	return 0
}

// Shutdown closes the sending side (RFC 9293 §3.10.4 CLOSE): a FIN follows
// the queued data; receiving continues.
func (e *Engine) Shutdown(id EndpointID) error {
	c, err := e.lookupConn(id)
	if err != nil {
		return err
	}
	return e.close(c, CodeAppShutdown)
}

// Close is CLOSE plus giving up the endpoint, like close(2) on a socket: a
// FIN follows the queued data, the application reads no more, and unread
// data turns the close into a reset (RFC 2525 §2.17). Closing a listener
// resets the connections it has not handed out.
func (e *Engine) Close(id EndpointID) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	if c.lq != nil {
		if c.state == Closed {
			return ErrConnectionDoesNotExist
		}
		e.begin()
		e.closeListener(c)
		return nil
	}
	if c.state == Closed {
		return e.closedErr(c)
	}
	if c.rcvBuf.Len() > 0 && c.state != SynSent {
		e.begin()
		unread := c.rcvBuf.Len()
		e.explain(c.id, CodeAppCloseUnreadReset, ActionAccepted, Field{"UNREAD", uint64(unread)})
		e.sendRstFor(c)
		e.toClosed(c, CodeAppCloseUnreadReset, nil)
		return nil
	}
	c.userClosed = true
	if c.finQueued || c.state == FinWait2 || c.state == TimeWait {
		e.begin()
		e.armFinWait2(c)
		return nil // already closing on the sending side: nothing more to do
	}
	return e.close(c, CodeAppClose)
}

func (e *Engine) close(c *conn, cause Code) error {
	switch c.state {
	case Closed:
		return e.closedErr(c)
	case SynSent:
		e.begin()
		e.explain(c.id, cause, ActionAccepted)
		e.toClosed(c, cause, nil)
		return nil
	case SynReceived, Established, CloseWait:
		if c.finQueued {
			return ErrConnectionClosing
		}
		e.begin()
		e.explain(c.id, cause, ActionAccepted)
		c.finQueued = true
		// SYN-RECEIVED: the FIN goes out once ESTABLISHED (RFC 9293 §3.10.4)
		// unless nothing was sent, in which case the RFC allows it now; we
		// wait for the handshake to finish, which the RFC also permits.
		if c.state == Established {
			e.setState(c, FinWait1, cause)
		} else if c.state == CloseWait {
			e.setState(c, LastAck, cause)
		}
		if c.state != SynReceived {
			e.output(c)
		}
		return nil
	default:
		return ErrConnectionClosing
	}
}

// Abort resets a connection or closes a listener at once (RFC 9293 §3.10.5).
func (e *Engine) Abort(id EndpointID) error {
	c, err := e.lookup(id)
	if err != nil {
		return err
	}
	e.begin()
	if c.lq != nil {
		if c.state == Closed {
			return ErrConnectionDoesNotExist
		}
		e.closeListener(c)
		return nil
	}
	switch c.state {
	case Closed:
		return e.closedErr(c)
	case SynReceived, Established, FinWait1, FinWait2, CloseWait:
		e.sendRstFor(c)
	}
	e.explain(c.id, CodeAppAbort, ActionAccepted)
	c.userClosed = true
	e.toClosed(c, CodeAppAbort, nil)
	return nil
}

// AdvanceTo moves the clock forward to t, firing every timer that falls due
// on the way, each at its own deadline. Moving backwards is a no-op.
func (e *Engine) AdvanceTo(t time.Duration) {
	e.begin()
	for len(e.timers) > 0 && e.timers[0].deadline <= t {
		c := e.timers[0]
		if c.deadline > e.now {
			e.now = c.deadline
		}
		e.fireTimers(c)
	}
	if t > e.now {
		e.now = t
	}
}

// NextDeadline returns the earliest armed timer, if any: a realtime host
// sleeps until then.
func (e *Engine) NextDeadline() (time.Duration, bool) {
	if len(e.timers) == 0 {
		return 0, false
	}
	return e.timers[0].deadline, true
}

func (e *Engine) lookup(id EndpointID) (*conn, error) {
	c := e.byID[id]
	if c == nil {
		return nil, ErrConnectionDoesNotExist
	}
	return c, nil
}

func (e *Engine) lookupConn(id EndpointID) (*conn, error) {
	c, err := e.lookup(id)
	if err == nil && c.lq != nil {
		return nil, ErrIsListener
	}
	return c, err
}

func (e *Engine) closedErr(c *conn) error {
	if c.err != nil {
		return c.err
	}
	return ErrConnectionDoesNotExist
}

func (e *Engine) newConn(local, remote netip.AddrPort) *conn {
	e.nextID++
	var c *conn
	if n := len(e.free); n > 0 {
		c = e.free[n-1]
		e.free[n-1] = nil
		e.free = e.free[:n-1]
	} else {
		c = new(conn)
	}
	*c = conn{id: e.nextID, local: local, remote: remote, heapIdx: -1}
	c.ooo.sackFin = !e.cfg.SACKDataOnly
	c.openedAt, c.lastRecv, c.ka = e.now, e.now, e.cfg.keepAliveDefaults()
	c.opts = e.cfg.sockOptsDefaults()
	e.byID[c.id] = c
	e.live++
	return c
}

// initConn sets up the send side of a new connection with the given ISS.
func (e *Engine) initConn(c *conn, iss Seq) {
	c.iss, c.sndUna, c.sndNxt, c.rtxNxt = iss, iss, iss, iss
	c.rcvMSS = e.cfg.MSS
	c.md5 = e.md5Key(c.remote.Addr()) != "" // md5.go
	c.sndMSS = defaultMSS(c.local.Addr())
	c.rto = e.cfg.InitialRTO
	c.ssthresh = 1<<31 - 1
	if !e.cfg.NoTimestamps && e.cfg.ISNMode != ISNFixed {
		c.tsOffset = e.tsOffset(Tuple{c.local, c.remote})
	}
}

// defaultMSS is the send MSS when the peer sends no MSS option
// (RFC 9293 §3.7.1: 536 for IPv4, RFC 8200 §5: 1220 for IPv6).
func defaultMSS(a netip.Addr) uint16 {
	if a.Is4() {
		return 536
	}
	return 1220
}

// setState records a transition.
func (e *Engine) setState(c *conn, to State, cause Code) {
	if c.state == to && to != Listen {
		return
	}
	from := c.state
	c.state = to
	e.ready.Transitions = append(e.ready.Transitions, Transition{Endpoint: c.id, Time: e.now, From: from, To: to, Cause: cause})
	if c.ka.Enabled || c.ka.Init > 0 || c.keepAt != 0 {
		e.armKeep(c)
	}
}

// toClosed deletes a TCB (RFC 9293 "delete the TCB, enter CLOSED"): the
// endpoint stays visible in CLOSED, with err, until RetainClosed pushes it out.
func (e *Engine) toClosed(c *conn, cause Code, err error) {
	if c.state == Closed && c.lq == nil && e.connFor(Tuple{c.local, c.remote}) != c {
		return
	}
	if err != nil {
		c.err = err
	}
	if c.parent != nil {
		c.parent.lq.remove(c)
		c.parent = nil
	}
	if c.lq != nil {
		if e.listeners[c.local] == c {
			delete(e.listeners, c.local)
		}
	} else if e.connFor(Tuple{c.local, c.remote}) == c {
		delete(e.conns, Tuple{c.local, c.remote})
		e.last = nil
	}
	c.rtxAt, c.persistAt, c.delackAt, c.timeWaitAt, c.keepAt, c.lossAt = 0, 0, 0, 0, 0, 0
	e.schedule(c)
	c.sndBuf.drop(&e.sndSpare)
	if e.cfg.RetainClosed >= 0 { // otherwise recycle drops it soon
		c.rcvBuf.compact(&e.rcvSpare)
	}
	c.ooo.clear()
	c.synData = nil
	if c.state != Closed {
		e.setState(c, Closed, cause)
		e.event(c, EventClosed)
	}
	e.live--
	e.retire(c.id)
}

func (e *Engine) retire(id EndpointID) {
	if e.cfg.RetainClosed < 0 {
		e.forget(id)
		return
	}
	e.closed = append(e.closed, id)
	if len(e.closed) > e.cfg.RetainClosed {
		e.forget(e.closed[0])
		e.closed[0] = 0
		e.closed = e.closed[1:]
	}
}

// forget drops a CLOSED endpoint. Its memory is reused from the next input
// on, when no caller can still hold it.
func (e *Engine) forget(id EndpointID) {
	if c := e.byID[id]; c != nil {
		delete(e.byID, id)
		e.retired = append(e.retired, c)
	}
}

// recycle zeroes the connections forgotten by earlier inputs for newConn.
func (e *Engine) recycle() {
	for i, c := range e.retired {
		if len(e.free) < maxFreeConns {
			c.rcvBuf.drop(&e.rcvSpare)
			*c = conn{}
			e.free = append(e.free, c)
		}
		e.retired[i] = nil
	}
	e.retired = e.retired[:0]
}

func (e *Engine) event(c *conn, k EventKind) {
	if n := len(e.ready.Events); n > 0 && e.ready.Events[n-1] == (Event{c.id, k}) {
		return
	}
	e.ready.Events = append(e.ready.Events, Event{c.id, k})
}

func (e *Engine) explain(id EndpointID, code Code, act Action, fs ...Field) {
	// Built in place: an Explanation is 160 bytes, and this runs for
	// nearly every input.
	xs := e.ready.Explanations
	if len(xs) < cap(xs) {
		xs = xs[:len(xs)+1]
	} else {
		xs = append(xs, Explanation{})
	}
	x := &xs[len(xs)-1]
	*x = Explanation{Endpoint: id, Code: code, Action: act, NFields: uint8(min(len(fs), maxFields))}
	for i := range x.NFields {
		x.Fields[i] = fs[i]
	}
	e.ready.Explanations = xs
}

// Endpoints returns a snapshot of every endpoint still visible, by ID.
func (e *Engine) Endpoints() []EndpointInfo {
	out := make([]EndpointInfo, 0, len(e.byID))
	for _, c := range e.byID {
		out = append(out, e.info(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Endpoint returns a snapshot of one endpoint.
func (e *Engine) Endpoint(id EndpointID) (EndpointInfo, bool) {
	c := e.byID[id]
	if c == nil {
		return EndpointInfo{}, false
	}
	return e.info(c), true
}

// Lookup finds the connection for a 4-tuple as seen from this side.
func (e *Engine) Lookup(t Tuple) (EndpointID, bool) {
	if c := e.conns[t]; c != nil {
		return c.id, true
	}
	return 0, false
}
