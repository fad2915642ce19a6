package script

import (
	"fmt"
	"net/netip"
)

// flow is one connection as the script sees it: the remote peer the
// runner plays, its fixed ISN, and the engine's ISN once learned.
type flow struct {
	n             int
	local, remote netip.AddrPort // local is the engine's side
	remoteISN     uint32
	iss           uint32 // the engine's ISN, learned from its SYN or SYN,ACK
	issKnown      bool
	tsMap         map[uint32]uint32 // TS val written on a > line -> the TSval actually sent
	lastTSVal     uint32            // the most recent TSval the engine sent on this flow
	hasTS         bool
	active        bool // created by connect()
	fd            int  // the socket that connect() was called on, while open; else -1
}

func (f *flow) String() string {
	return fmt.Sprintf("flow %d (%s <-> %s)", f.n, f.local, f.remote)
}

// flowOf finds the flow of an emitted packet by its addresses.
func (r *runner) flowOf(src netip.Addr, srcPort uint16, dst netip.AddrPort) *flow {
	for _, f := range r.flows {
		if f != nil && f.local.Port() == srcPort && f.remote == dst && f.local.Addr() == src {
			return f
		}
	}
	return nil
}

// flow returns flow n (1 for 0), creating a passive one (the runner's
// peer dialing the listening port from port 40000+n-1) on first use.
func (r *runner) flow(n int) *flow {
	if n == 0 {
		n = 1
	}
	for len(r.flows) < n {
		r.flows = append(r.flows, nil)
	}
	if r.flows[n-1] == nil {
		r.flows[n-1] = &flow{
			n:         n,
			local:     netip.AddrPortFrom(r.h.localIP, r.listenPort),
			remote:    netip.AddrPortFrom(r.h.remoteIP, r.h.remotePort+uint16(n-1)),
			remoteISN: r.remoteISN,
			tsMap:     map[uint32]uint32{},
			fd:        -1,
		}
	}
	return r.flows[n-1]
}

// newActiveFlow allocates the first unused flow number for a connect()
// on socket fd. Another connect on the same socket (EALREADY, EISCONN, or
// the call that completes a non-blocking connect) keeps its flow: the flow
// has learnt the stack's ISN from its SYN.
func (r *runner) newActiveFlow(fd int, local, remote netip.AddrPort) *flow {
	for _, f := range r.flows {
		if f != nil && f.active && f.fd == fd {
			return f
		}
	}
	n := len(r.flows) + 1
	for i, f := range r.flows {
		if f == nil {
			n = i + 1
			break
		}
	}
	if n > 1 && r.flows[0] != nil && r.flows[0].active && !r.flowMarks() {
		// A script without [flow N] marks means its most recent socket, as
		// packetdrill does: a second connect after the first is done takes
		// over flow 1 (FreeBSD's fast-open scripts open three in a row).
		n = 1
	}
	for len(r.flows) < n {
		r.flows = append(r.flows, nil)
	}
	f := &flow{n: n, local: local, remote: remote, remoteISN: r.remoteISN, tsMap: map[uint32]uint32{}, active: true, fd: fd}
	r.flows[n-1] = f
	return f
}

// flowMarks reports whether any packet line of the script names a flow.
func (r *runner) flowMarks() bool {
	for _, ev := range r.s.Events {
		if ev.Packet != nil && ev.Packet.Flow != 0 {
			return true
		}
	}
	return false
}

// socketClosed forgets fd in the flows: a later socket may get its number.
func (r *runner) socketClosed(fd int) {
	for _, f := range r.flows {
		if f != nil && f.fd == fd {
			f.fd = -1
		}
	}
}
