package machine

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// digest turns one batch of engine outputs into the log's OutputDigest. The
// packets are copied (Ready's memory belongs to the engine) into one
// allocation; the copies are shared, read-only, by the log record, the API
// response and the outbound queue.
func (m *Machine) digest(rd *fsm.Ready, inputIndex uint64, res *pb.CallResult) *pb.OutputDigest {
	d := &pb.OutputDigest{}
	m.FillDigest(d, rd, inputIndex, res)
	return d
}

// fillDigest is digest into a reset d. The slices and messages it hangs on
// d are new each time (callers keep them); d itself may be reused once its
// record is written.
func (m *Machine) FillDigest(d *pb.OutputDigest, rd *fsm.Ready, inputIndex uint64, res *pb.CallResult) {
	d.InputIndex, d.Result = inputIndex, res
	if n := len(rd.Packets); n > 0 {
		total := 0
		for i := range rd.Packets {
			total += len(rd.Packets[i].Data)
		}
		arena := make([]byte, 0, total)
		d.Packets = make([][]byte, n)
		for i := range rd.Packets {
			start := len(arena)
			arena = append(arena, rd.Packets[i].Data...)
			d.Packets[i] = arena[start:len(arena):len(arena)]
		}
	}
	if n := len(rd.Transitions); n > 0 {
		d.Transitions = make([]*pb.Transition, n)
		for i, t := range rd.Transitions {
			d.Transitions[i] = &pb.Transition{
				Endpoint:      m.EndpointName(t.Endpoint),
				FromState:     stateEnum(t.From),
				ToState:       stateEnum(t.To),
				FromStateName: t.From.String(),
				ToStateName:   t.To.String(),
				Cause:         t.Cause.String(),
				Time:          durationpb.New(t.Time),
			}
		}
	}
	if n := len(rd.Events); n == 1 {
		d.Events = m.oneEvent(rd.Events[0])
	} else if n > 1 {
		d.Events = m.room().newEvents(n)
		for i, ev := range rd.Events {
			d.Events[i].Endpoint, d.Events[i].Kind = m.EndpointName(ev.Endpoint), pb.EventKind(ev.Kind)
		}
	}
}

func stateEnum(s fsm.State) pb.State { return pb.State(s) + 1 }

// oneEvent returns the events of a digest with the one event ev. Every
// data segment in order reports EVENT_KIND_DATA_READABLE on its
// connection, so the slice of the last such digest is kept and handed out
// again while the event is the same: digests, records and responses share
// it, read-only, as they share the events allocated for them, and its
// capacity is cut so that an append copies it.
func (m *Machine) oneEvent(ev fsm.Event) []*pb.Event {
	name, kind := m.EndpointName(ev.Endpoint), pb.EventKind(ev.Kind)
	if l := m.lastEvent; l != nil && l[0].Kind == kind && l[0].Endpoint == name {
		return l
	}
	one := new(struct {
		ev  pb.Event
		ptr [1]*pb.Event
	})
	one.ev.Endpoint, one.ev.Kind = name, kind
	one.ptr[0] = &one.ev
	m.lastEvent = one.ptr[:1:1]
	return m.lastEvent
}

// ClearDigest empties a digest FillDigest filled, as Reset does but
// without storing its message info again: the live digest is cleared for
// every input. The slices and messages it held are not touched (their
// readers keep them).
func ClearDigest(d *pb.OutputDigest) {
	d.InputIndex, d.Packets, d.Transitions, d.Events, d.Result = 0, nil, nil, nil, nil
}

// appendOutputs adds the API view of one batch to out: the emitted segments
// (decoded unless rawOnly), the digest's transitions and events, and the
// engine's explanations (unless rawOnly).
func (m *Machine) AppendOutputs(out *pb.Outputs, rd *fsm.Ready, d *pb.OutputDigest, rawOnly bool) {
	for i := range rd.Packets {
		p := &rd.Packets[i]
		if rawOnly {
			out.Segments = append(out.Segments, &pb.Segment{
				Raw:       d.Packets[i],
				Direction: pb.Direction_DIRECTION_OUTBOUND,
				Time:      durationpb.New(p.Time),
				Endpoint:  m.EndpointName(p.Endpoint),
			})
			continue
		}
		out.Segments = append(out.Segments, SegmentView(d.Packets[i], pb.Direction_DIRECTION_OUTBOUND, p.Time, m.EndpointName(p.Endpoint)))
	}
	out.Transitions = append(out.Transitions, d.Transitions...)
	if out.Events == nil && len(d.Events) > 0 {
		// The first events of a batch: room for one per input.
		out.Events = make([]*pb.Event, 0, max(m.room().size, len(d.Events)))
	}
	out.Events = append(out.Events, d.Events...)
	if rawOnly {
		return
	}
	for i := range rd.Explanations {
		out.Explanations = append(out.Explanations, m.Explanation(&rd.Explanations[i]))
	}
}

func (m *Machine) Explanation(x *fsm.Explanation) *pb.Explanation {
	pe := &pb.Explanation{
		Endpoint: m.EndpointName(x.Endpoint),
		Action:   pb.Explanation_Action(x.Action),
		Code:     x.Code.String(),
		Section:  x.Section(),
		Text:     x.Text(),
	}
	if x.NFields > 0 {
		pe.Fields = make(map[string]uint64, x.NFields)
		for _, f := range x.Fields[:x.NFields] {
			pe.Fields[f.Name] = f.Value
		}
	}
	return pe
}

// SegmentView decodes an IP packet into the API's Segment. A packet that
// does not decode (only possible for stored bytes from elsewhere) keeps its
// raw bytes and says why in the summary.
func SegmentView(raw []byte, dir pb.Direction, t time.Duration, endpoint string) *pb.Segment {
	s := &pb.Segment{Raw: raw, Direction: dir, Time: durationpb.New(t), Endpoint: endpoint}
	if src, dst, icmp, ok := fsm.ICMPPacket(raw); ok {
		if m, err := fsm.ParseICMP(src, dst, icmp); err == nil {
			s.Summary = fmt.Sprintf("%s > %s ICMP type %d code %d quoting %s > %s seq %d", src, dst, m.Type, m.Code, m.Quoted.Local, m.Quoted.Remote, m.Seq)
			return s
		}
	}
	src, dst, tcp, err := fsm.ParsePacket(raw)
	if err != nil {
		s.Summary = "undecodable: " + err.Error()
		return s
	}
	seg, err := fsm.ParseSegment(tcp)
	if err != nil {
		s.Summary = "undecodable: " + err.Error()
		return s
	}
	srcAP, dstAP := netip.AddrPortFrom(src, seg.SrcPort), netip.AddrPortFrom(dst, seg.DstPort)
	s.SourceAddress = srcAP.String()
	s.DestinationAddress = dstAP.String()
	s.SourcePort = uint32(seg.SrcPort)
	s.DestinationPort = uint32(seg.DstPort)
	s.Seq = uint32(seg.Seq)
	s.Ack = uint32(seg.Ack)
	s.Flags = flagNames[seg.Flags]
	s.Window = uint32(seg.Window)
	s.Urgent = uint32(seg.Urgent)
	s.Options = optionsView(&seg.Options)
	s.PayloadLength = uint32(len(seg.Payload))
	s.SegmentLength = uint32(seg.Len())
	if len(seg.Payload) > 0 {
		s.Payload = seg.Payload
	}
	s.Checksum = uint32(seg.Checksum)
	s.ChecksumValid = fsm.TCPChecksumValid(src, dst, tcp)
	s.IpEcn = uint32(fsm.IPECN(raw))
	s.Summary = segmentSummary(s.SourceAddress, s.DestinationAddress, &seg)
	return s
}

// flagNames holds Flags.Names for every flag byte, so that a view shares
// one read-only slice instead of building one per segment; each has its
// capacity cut to its length, so an append by a caller copies it.
var flagNames = func() (t [256][]string) {
	for i := range t {
		n := fsm.Flags(i).Names()
		t[i] = n[:len(n):len(n)]
	}
	return t
}()

// segmentSummary is fsm's tcpdump-style one-liner with the addresses in
// front of the ports: "10.0.0.2:40000 > 10.0.0.1:80 S 0:0(0) win 65535 <mss 1460>".
// src and dst are the formatted address:port pairs (the view's own
// strings, not formatted twice); the result is built in one allocation.
func segmentSummary(src, dst string, seg *fsm.Segment) string {
	text := seg.String()
	// Replace the leading "SPORT > DPORT" with the full addresses.
	if i := strings.Index(text, " > "); i >= 0 {
		if j := strings.IndexByte(text[i+3:], ' '); j >= 0 {
			rest := text[i+3+j:]
			var b strings.Builder
			b.Grow(len(src) + 3 + len(dst) + len(rest))
			b.WriteString(src)
			b.WriteString(" > ")
			b.WriteString(dst)
			b.WriteString(rest)
			return b.String()
		}
	}
	return text
}

func optionsView(o *fsm.Options) *pb.SegmentOptions {
	if !o.HasMSS && !o.HasWScale && !o.SACKPermitted && o.NumSACK == 0 && !o.HasTimestamp && o.Unknown == 0 {
		return nil
	}
	v := &pb.SegmentOptions{SackPermitted: o.SACKPermitted, UnknownCount: uint32(o.Unknown)}
	if o.HasMSS {
		mss := uint32(o.MSS)
		v.Mss = &mss
	}
	if o.HasWScale {
		ws := uint32(o.WScale)
		v.WindowScale = &ws
	}
	if o.HasTimestamp {
		v.Timestamp = &pb.TimestampOption{Val: o.TSVal, Ecr: o.TSEcr}
	}
	for _, b := range o.SACK[:min(int(o.NumSACK), fsm.MaxSACKBlocks)] {
		v.SackBlocks = append(v.SackBlocks, &pb.SackBlock{Start: uint32(b.Start), End: uint32(b.End)})
	}
	if t := o.String(); t != "" {
		v.Text = "<" + t + ">"
	}
	return v
}
