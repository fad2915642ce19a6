// Package diagram draws a TCP exchange as a ladder (sequence) diagram in
// standalone SVG: one vertical line per endpoint address, time flowing
// down the page, an arrow per segment from the sender's line to the
// receiver's, labelled the way packetdrill writes segments
// ("S. seq=300 ack=101 win=65535"), and each endpoint's RFC 9293 state
// written on its line where it changes.
//
// The picture is laid out by event order, not to scale: every send, every
// later receipt and every state change gets a row of its own (a segment
// that arrives at once is one horizontal row; simultaneous state changes of
// different endpoints share one), with its session time printed at the
// left, so a handshake of microseconds and a TIME-WAIT of a minute are both
// readable. Pauses of a second or more are marked with a break in the
// lines. Labels are placed along their arrows clear of state boxes and of
// each other where the layout allows.
//
// The input model (Diagram, Arrow, StateMark) is plain data, independent
// of the API; FromPackets builds one from the segments and state changes
// of a session. Output is deterministic: the same Diagram and Options give
// the same bytes.
package diagram

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// Diagram is what Render draws.
type Diagram struct {
	// Title is drawn at the top; empty for none.
	Title string
	// Columns are the endpoint addresses, left to right, e.g.
	// "10.0.0.2:40000", "10.0.0.1:80". Addresses that events name but
	// Columns does not are appended in order of first appearance.
	Columns []string
	// Events are the segments (Arrow) and state changes (StateMark) in the
	// order they happened. Events with equal times keep this order, which
	// is how a zero-delay exchange (everything at one instant) still reads
	// as cause and effect: list a state change after the segment that
	// caused it and before the segments it caused.
	Events []Event
}

// Event is an Arrow or a StateMark.
type Event interface{ isEvent() }

// Arrow is one segment, sent by From and delivered to To.
type Arrow struct {
	From, To string // column names
	// SendTime is when From sent it; RecvTime when To got it. A RecvTime
	// not after SendTime (such as zero) means it arrived at once: the arrow
	// is horizontal. A later RecvTime slopes the arrow down to the row of
	// its arrival, which goes before any event listed after the arrow at
	// or after RecvTime.
	SendTime, RecvTime time.Duration
	// Label is the text on the arrow. Empty: made from Segment, if set.
	Label string
	// Segment, optional, gives the automatic label: flags, seq, ack,
	// payload length and window (see Options).
	Segment *fsm.Segment
	// Dropped: To discarded it (a bad checksum, outside the window, ...).
	// Drawn red and dashed, ending in a cross instead of a head.
	Dropped bool
	// Lost: it never reached To. Drawn red and dashed, stopping halfway.
	Lost bool
	// Answered: To replied (an ACK or a RST) and otherwise discarded it.
	// Drawn orange and dashed, ending in a bar.
	Answered bool
	// Held: To queued it for later (out-of-order data). Drawn purple and
	// dotted, with a hollow head.
	Held bool
	// Retransmission: From had sent this sequence space before. Drawn
	// with a thicker line.
	Retransmission bool
	// Note is a second line under the arrow, e.g. "bad checksum" or
	// "retransmission". A dropped, lost, answered, held or retransmitted
	// arrow without a note is noted so.
	Note string
	// Title is the arrow's tooltip (an SVG <title>), e.g. the engine's
	// explanation of what it did with the segment. Empty: the label and
	// the note.
	Title string
	// Ref, when not empty, is written on the arrow's group as data-ref, so
	// a page showing the SVG can tell which segment was clicked.
	// FromPackets sets it to the segment's position among the Packets it
	// was given, from 0.
	Ref string
}

// StateMark is a column's endpoint entering State (an RFC 9293 name such
// as "SYN-SENT", "ESTABLISHED", "TIME-WAIT", "CLOSED") at Time.
type StateMark struct {
	Column string
	Time   time.Duration
	State  string
	// Ref, when not empty, is written on the box's group as data-ref.
	// FromPackets sets it to the change's position among the StateChanges
	// it was given, from 0.
	Ref string
}

func (Arrow) isEvent()     {}
func (StateMark) isEvent() {}

// Options change how segments are labelled.
type Options struct {
	// Relative prints seq and ack relative to the initial sequence numbers,
	// as packetdrill does: a side's ISN, per connection, is the sequence
	// number of the first SYN its column sends to the other column (so that
	// SYN has seq=0 and the SYN,ACK answering it ack=1). Numbers of a side
	// whose SYN is not in the diagram stay absolute, and the footer says
	// so. Only automatic labels (from Segment) change.
	Relative bool
	// TCPOptions adds a segment's TCP options under its label in
	// packetdrill syntax, e.g. "<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>".
	TCPOptions bool
}

// Packet is a segment as a session saw it, for FromPackets.
type Packet struct {
	// Time is when the segment was sent (emitted by the engine, or
	// submitted to it); RecvTime when it arrived, if later (see Arrow).
	Time, RecvTime time.Duration
	Src, Dst       netip.AddrPort
	Segment        fsm.Segment
	// Dropped: the receiver discarded it. BadChecksum also sets Dropped
	// and notes "bad checksum".
	Dropped, BadChecksum bool
	// Lost: it never arrived.
	Lost bool
	// Answered, Held: as in Arrow.
	Answered, Held bool
	Note           string
	Title          string
}

// StateChange is an endpoint entering a state, for FromPackets.
type StateChange struct {
	Time time.Duration
	// Endpoint is the endpoint's local address. A listener's unspecified
	// address (0.0.0.0:80, [::]:80) is drawn on the column of the first
	// packet address with the same port and family.
	Endpoint netip.AddrPort
	State    fsm.State
}

// Record is a Packet or a StateChange.
type Record interface{ isRecord() }

func (Packet) isRecord()      {}
func (StateChange) isRecord() {}

// FromPackets builds a Diagram from a session's records in the order they
// happened: a segment's arrow goes from its source address to its
// destination address. A segment that carries sequence space (data, SYN
// or FIN) its sender had already sent to the same address is marked a
// retransmission. Columns are the packet addresses in order of first
// appearance, so the side that sends the first segment (the SYN) is on the
// left, then addresses only state changes name.
// Segment payloads are not copied; only their lengths are used.
func FromPackets(title string, records []Record) Diagram {
	d := Diagram{Title: title}
	// Addresses of packets, in order, to place unspecified listener addresses.
	var addrs []netip.AddrPort
	for _, r := range records {
		if p, ok := r.(Packet); ok {
			addrs = append(addrs, p.Src, p.Dst)
		}
	}
	column := func(a netip.AddrPort) string {
		if a.Addr().IsUnspecified() {
			for _, b := range addrs {
				if b.Port() == a.Port() && b.Addr().Is4() == a.Addr().Is4() && !b.Addr().IsUnspecified() {
					a = b
					break
				}
			}
		}
		return a.String()
	}
	seen := map[string]bool{}
	addColumn := func(c string) {
		if !seen[c] {
			seen[c] = true
			d.Columns = append(d.Columns, c)
		}
	}
	for _, a := range addrs { // packet addresses first: the first sender on the left
		addColumn(column(a))
	}
	// The sequence space sent so far, per direction.
	type flow struct{ src, dst netip.AddrPort }
	sent := map[flow]*spans{}
	packets, changes := 0, 0
	for _, r := range records {
		switch r := r.(type) {
		case Packet:
			seg := r.Segment
			a := Arrow{
				From: column(r.Src), To: column(r.Dst),
				SendTime: r.Time, RecvTime: r.RecvTime,
				Segment: &seg, Dropped: r.Dropped || r.BadChecksum, Lost: r.Lost, Note: r.Note,
				Answered: r.Answered, Held: r.Held, Title: r.Title, Ref: strconv.Itoa(packets),
			}
			packets++
			if n := seqLen(&seg); n > 0 && seg.Flags&fsm.FlagRST == 0 {
				f := flow{r.Src, r.Dst}
				sp, ok := sent[f]
				if !ok {
					sp = &spans{base: seg.Seq}
					sent[f] = sp
				}
				a.Retransmission = sp.add(seg.Seq, n)
			}
			if r.BadChecksum && a.Note == "" {
				a.Note = "dropped: bad checksum"
			}
			if a.From == a.To {
				// A segment addressed to its own sender has no arrow to
				// draw between columns: mark it on its column instead.
				addColumn(a.From)
				d.Events = append(d.Events, StateMark{Column: a.From, Time: r.Time,
					State: fmt.Sprintf("segment to itself: seq=%d", uint32(seg.Seq))})
				continue
			}
			addColumn(a.From)
			addColumn(a.To)
			d.Events = append(d.Events, a)
		case StateChange:
			c := column(r.Endpoint)
			addColumn(c)
			d.Events = append(d.Events, StateMark{Column: c, Time: r.Time, State: r.State.String(), Ref: strconv.Itoa(changes)})
			changes++
		}
	}
	return d
}

// spans is the sequence space a sender has sent, as sorted, disjoint
// ranges of offsets from its first segment's SEG.SEQ (so wrapping does not
// matter within 2^31 bytes).
type spans struct {
	base fsm.Seq
	r    [][2]int64 // [start, end)
}

// add records [seq, seq+n) and reports whether any of it was sent before.
func (s *spans) add(seq fsm.Seq, n int) bool {
	start := int64(int32(seq.Sub(s.base)))
	end := start + int64(n)
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i][1] >= start })
	// Merge [start, end) with the ranges it touches.
	overlap := false
	j := i
	for j < len(s.r) && s.r[j][0] <= end {
		overlap = overlap || (s.r[j][0] < end && s.r[j][1] > start)
		start, end = min(start, s.r[j][0]), max(end, s.r[j][1])
		j++
	}
	s.r = slices.Replace(s.r, i, j, [2]int64{start, end})
	return overlap
}

// seqLen is SEG.LEN: the payload plus one for each of SYN and FIN
// (RFC 9293 §3.4).
func seqLen(s *fsm.Segment) int {
	n := len(s.Payload)
	if s.Flags&fsm.FlagSYN != 0 {
		n++
	}
	if s.Flags&fsm.FlagFIN != 0 {
		n++
	}
	return n
}

// flagLetters are packetdrill's flag letters in wire bit order
// (FIN SYN RST PSH ACK URG ECE CWR), as fsm.Segment.String writes them.
const flagLetters = "FSRP.UEW"

// segmentLabel writes a segment packetdrill style: flags, then seq, ack
// (with ACK set), len (with a payload) and win, e.g.
// "P. seq=101 ack=301 len=5 win=65535". isnFrom and isnTo, when non-nil,
// make seq and ack relative.
func segmentLabel(s *fsm.Segment, isnFrom, isnTo *fsm.Seq) string {
	b := make([]byte, 0, 64)
	if s.Flags == 0 {
		b = append(b, "none"...)
	}
	for i := range flagLetters {
		if s.Flags&(1<<i) != 0 {
			b = append(b, flagLetters[i])
		}
	}
	seq, ack := uint32(s.Seq), uint32(s.Ack)
	if isnFrom != nil {
		seq -= uint32(*isnFrom)
	}
	if isnTo != nil {
		ack -= uint32(*isnTo)
	}
	b = fmt.Appendf(b, " seq=%d", seq)
	if s.Flags&fsm.FlagACK != 0 {
		b = fmt.Appendf(b, " ack=%d", ack)
	}
	if len(s.Payload) > 0 {
		b = fmt.Appendf(b, " len=%d", len(s.Payload))
	}
	b = fmt.Appendf(b, " win=%d", s.Window)
	return string(b)
}

// tcpOptionsText returns the segment's options in packetdrill syntax
// ("<mss 1460,nop,wscale 7>"), or "" without options. fsm.Segment.String
// ends with them, and is the only place they are formatted.
func tcpOptionsText(s *fsm.Segment) string {
	str := s.String()
	for i := 0; i+1 < len(str); i++ {
		if str[i] == ' ' && str[i+1] == '<' {
			return str[i+1:]
		}
	}
	return ""
}

var errEmptyColumn = errors.New("diagram: an event names an empty column")
