package fsm

import (
	"maps"
	"net/netip"
)

// Clone returns an independent copy of the engine: given the same inputs
// from here on, the copy and the original produce the same outputs, byte
// for byte, and neither sees the other's changes. It is how a host keeps
// snapshots of a session while it replays the session's log, so that the
// state after any record can be had by replaying from the nearest snapshot
// instead of from the start.
//
// Call it between inputs, after Ready: outputs not yet drained are not
// copied (the copy starts with none). Buffered data is copied, so a
// snapshot costs about what the connections buffer.
func (e *Engine) Clone() *Engine {
	n := &Engine{
		cfg:       e.cfg,
		md5Keys:   e.md5Keys, // copy on write
		now:       e.now,
		nextID:    e.nextID,
		conns:     make(map[Tuple]*conn, len(e.conns)),
		listeners: make(map[netip.AddrPort]*conn, len(e.listeners)),
		byID:      make(map[EndpointID]*conn, len(e.byID)),
		closed:    append([]EndpointID(nil), e.closed...),
		live:      e.live,
		drained:   true,
		tfoCache:  maps.Clone(e.tfoCache),
	}
	// Every live connection is in byID; conns, listeners, the timer heap and
	// the listen queues point into the same set (or at connections
	// forgotten during the last input, which are copied too, so that
	// nothing is shared).
	copies := make(map[*conn]*conn, len(e.byID))
	var work []*conn // copied, pointers not yet fixed
	remap := func(c *conn) *conn {
		if c == nil {
			return nil
		}
		d, ok := copies[c]
		if !ok {
			d = c.clone()
			copies[c] = d
			work = append(work, c)
		}
		return d
	}
	for id, c := range e.byID {
		n.byID[id] = remap(c)
	}
	for t, c := range e.conns {
		n.conns[t] = remap(c)
	}
	for a, c := range e.listeners {
		n.listeners[a] = remap(c)
	}
	n.last = remap(e.last)
	n.timers = make(timerHeap, len(e.timers))
	for i, c := range e.timers {
		n.timers[i] = remap(c)
	}
	for len(work) > 0 {
		old := work[len(work)-1]
		work = work[:len(work)-1]
		c := copies[old]
		c.parent = remap(old.parent)
		if old.lq != nil {
			lq := *old.lq
			lq.synQueue = make([]*conn, len(old.lq.synQueue))
			for i, q := range old.lq.synQueue {
				lq.synQueue[i] = remap(q)
			}
			lq.acceptQueue = make([]*conn, len(old.lq.acceptQueue))
			for i, q := range old.lq.acceptQueue {
				lq.acceptQueue[i] = remap(q)
			}
			c.lq = &lq
		}
	}
	return n
}

// clone copies a connection and the bytes it holds; its pointers to other
// connections (parent, listen queues) are fixed up by Engine.Clone.
func (c *conn) clone() *conn {
	d := *c
	d.sndBuf.buf = append([]byte(nil), c.sndBuf.buf...)
	d.rcvBuf.buf = append([]byte(nil), c.rcvBuf.buf...)
	d.synData = append([]byte(nil), c.synData...)
	d.ooo.segs = make([]oooSeg, len(c.ooo.segs))
	for i, s := range c.ooo.segs {
		s.data = append([]byte(nil), s.data...)
		d.ooo.segs[i] = s
	}
	// Loss-recovery state (recovery.go, rack.go, cubic.go) is allocated
	// on first use and must not be shared either.
	if c.sack != nil {
		sk := *c.sack
		sk.board = append([]SACKBlock(nil), c.sack.board...)
		d.sack = &sk
	}
	if c.rack != nil {
		r := *c.rack
		r.segs = append([]rackSeg(nil), c.rack.segs...)
		d.rack = &r
	}
	if c.cc != nil {
		cc := *c.cc
		d.cc = &cc
	}
	return &d
}
