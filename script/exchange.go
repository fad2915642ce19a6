package script

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// inbound builds the segment of a < line and delivers it.
func (r *runner) inbound(ev *Event) {
	p := ev.Packet
	f := r.flow(p.Flow)
	flags := flagsOf(p.Flags)
	rISN, iss := f.remoteISN, f.iss
	if p.SeqAbs { // "N:N(N)!": the numbers are written as on the wire
		rISN, iss = 0, 0
	}
	seg := fsm.Segment{Flags: flags, Seq: fsm.Seq(rISN + p.Seq), Window: 65535}
	if p.Ack != nil {
		seg.Ack = fsm.Seq(iss + *p.Ack)
	} else if flags&fsm.FlagACK != 0 {
		r.cur.Notes = append(r.cur.Notes, "ACK is set without an ack number: sent ack 0 (relative)")
		seg.Ack = fsm.Seq(f.iss)
	}
	if p.Win != nil {
		seg.Window = uint16(*p.Win)
	} else {
		r.cur.Notes = append(r.cur.Notes, "no win given: sent win 65535")
	}
	if p.Urg != nil {
		seg.Urgent = uint16(*p.Urg)
	}
	if p.ECN != "" {
		r.cur.Notes = append(r.cur.Notes, "ECN marking ["+p.ECN+"] ignored: tcpstated does not do ECN")
	}
	seg.Payload = make([]byte, p.Len)
	for i := range seg.Payload {
		seg.Payload[i] = byte('a' + i%26)
	}
	opts, err := encodeOptions(p.Opts, f.iss, func(ecr uint32) uint32 {
		switch v, ok := f.tsMap[ecr]; {
		case ecr == 0:
			return 0
		case ok:
			if v != ecr {
				r.cur.Notes = append(r.cur.Notes, fmt.Sprintf("TS ecr %d is the val of an earlier > line: sent the engine's actual TSval %d", ecr, v))
			}
			return v
		case f.hasTS:
			if f.lastTSVal != ecr {
				r.cur.Notes = append(r.cur.Notes, fmt.Sprintf("TS ecr %d: sent the engine's most recent TSval %d", ecr, f.lastTSVal))
			}
			return f.lastTSVal
		}
		return ecr
	})
	if err != nil {
		r.failf("%v", err)
		return
	}
	pkt := buildPacket(f.remote, f.local, &seg, opts)
	r.signInbound(p, pkt) // md5.go
	_, _, tcp, _ := fsm.ParsePacket(pkt)
	sent, _ := fsm.ParseSegment(tcp)
	r.cur.Actual = "sent " + sent.String()
	mark := len(r.cur.Engine)
	if err := r.t.Inject(pkt); err != nil {
		r.failf("the target refused the packet: %v", err)
		return
	}
	r.drain()
	r.lastIn, r.lastInExpl = ev.Pos.Line, append([]string(nil), r.cur.Engine[mark:]...)
	r.lag = 0 // the kernel's timers now run from this packet
}

// outbound matches a > line against the first emitted, unmatched packet.
func (r *runner) outbound(ev *Event, at, lo, hi time.Duration) {
	p := ev.Packet
	f := r.flow(p.Flow)
	r.cur.Expected = p.body()
	if at > r.now() {
		r.advance(at)
	}
	// Wait for the next emission until the window closes (for "*", as
	// long as the target has something to do).
	if len(r.queue) == 0 {
		until := time.Duration(math.MaxInt64)
		if hi < math.MaxInt64-r.base {
			until = r.base + hi
		}
		r.t.Await(until)
		r.drain()
	}
	if r.checkPending(r.now()); r.failed {
		return
	}
	if len(r.queue) == 0 {
		when := "by " + formatSeconds(hi)
		if hi == math.MaxInt64 {
			when = "ever: no timer is armed"
		}
		r.cur.Actual = "nothing"
		r.failf("expected %s was not emitted %s%s", p.body(), when, r.lastInbound())
		return
	}
	o := r.queue[0]
	r.queue = r.queue[1:]
	if r.coalesce {
		o = r.coalesced(o, p.Len)
	}
	r.cur.Actual = o.render() + " at " + formatSeconds(o.t)
	r.cur.Time = seconds(o.t)
	if o.t < lo {
		r.failf("a packet was emitted at %s, before this line's window [%s, %s]: %s%s",
			formatSeconds(o.t), formatSeconds(lo), formatSeconds(hi), o.render(), r.lastInbound())
		return
	}
	fails, notes := comparePacket(p, o, f, r.strict)
	fails = append(fails, r.checkMD5(p, o)...) // md5.go
	r.cur.Notes = append(r.cur.Notes, notes...)
	if len(fails) > 0 {
		r.failf("%s%s", strings.Join(fails, "; "), r.lastInbound())
		return
	}
	// Remember which TSval the script called what, for later ecr values.
	if o.seg.Options.HasTimestamp {
		for _, opt := range p.Opts {
			if opt.Kind == OptTS {
				f.tsMap[opt.Val] = o.seg.Options.TSVal
			}
		}
	}
	r.lag = max(o.t-at, 0)
	if ev.Time.Kind == TimeExact {
		r.last = at
	} else {
		r.last = o.t
	}
}

// lastInbound is the engine's explanation of the last inbound packet, for
// failure reasons; nothing on a target that does not explain itself (the
// kernel, a DUT).
func (r *runner) lastInbound() string {
	if r.lastIn == 0 || r.x == nil {
		return ""
	}
	if len(r.lastInExpl) == 0 {
		return fmt.Sprintf(" (the engine said nothing about the last inbound packet, line %d)", r.lastIn)
	}
	return fmt.Sprintf(" (the engine on the last inbound packet, line %d: %s)", r.lastIn, strings.Join(r.lastInExpl, "; "))
}

// coalesced joins to o the queued segments that continue it at the same
// instant, up to want payload bytes (Options.Coalesce): the GSO
// super-segment a script written on a GSO-capable device expects.
func (r *runner) coalesced(o *outPkt, want uint32) *outPkt {
	const noJoin = fsm.FlagSYN | fsm.FlagRST | fsm.FlagFIN
	if len(o.seg.Payload) == 0 || uint32(len(o.seg.Payload)) >= want || o.seg.Flags&noJoin != 0 {
		return o
	}
	m := *o
	m.seg.Payload = append([]byte(nil), o.seg.Payload...)
	m.data = nil // no longer the wire's bytes
	joined := 1
	for len(r.queue) > 0 && uint32(len(m.seg.Payload)) < want {
		n := r.queue[0]
		end := m.seg.Seq.Add(fsm.Size(len(m.seg.Payload)))
		if n.t != m.t || n.flow != m.flow || n.seg.Seq != end || n.seg.Ack != m.seg.Ack ||
			n.seg.Flags&(fsm.FlagSYN|fsm.FlagRST) != 0 || len(n.seg.Payload) == 0 || m.seg.Flags&fsm.FlagFIN != 0 {
			break
		}
		r.queue = r.queue[1:]
		m.seg.Payload = append(m.seg.Payload, n.seg.Payload...)
		m.seg.Flags |= n.seg.Flags
		m.seg.Window = n.seg.Window
		joined++
	}
	if joined > 1 {
		r.cur.Notes = append(r.cur.Notes, fmt.Sprintf("coalesced: %d segments emitted at %s shown as one (--coalesce)", joined, formatSeconds(o.t)))
	}
	return &m
}
