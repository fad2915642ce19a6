package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/diagram"
	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/pcapng"
	"github.com/tcpstated/tcpstated/pcap"
)

// Exports: a session's segments as a pcap file and as a ladder diagram,
// both taken from its replay log. The log holds every inbound packet (an
// input record) and every packet the engine emitted (in the output record
// of the input that caused it), but not the exact time of a packet a timer
// emitted in the middle of a clock advance, nor the engine's explanations.
// So the export re-runs the log in a fresh machine, as VerifySession does,
// and takes each packet's time, each state change and each drop from the
// re-run. Where the re-run's packets differ from the logged ones (a log
// written by another engine version), the logged packets are used, at
// their output record's time, and the difference is reported.

// Diagram caps (DrawDiagramRequest.max_segments).
const (
	defaultDiagramSegments = 500
	maxDiagramSegments     = 5000
)

// exportItem is one segment or one state change of a session.
type exportItem struct {
	time time.Duration
	// A segment: the IP packet (shared with the log record; read only).
	packet  []byte
	inbound bool
	// What the engine did with an inbound segment: discarded it (dropped,
	// or answered with an ACK or RST), or held it for later; why.
	dropped, answered, held bool
	note                    string
	// The engine's explanations of the input the segment belongs to, as
	// the diagram's tooltip.
	title string
	// A state change (packet nil): the endpoint's local address and the
	// state it entered.
	local netip.AddrPort
	state fsm.State
}

// exportSummary says what a walk over a session found.
type exportSummary struct {
	createTime time.Time
	segments   int // segments in the log (all of them, also past a stop)
	// differs is the index of the first output record whose packets the
	// re-run did not reproduce; 0 when every one matched.
	differs uint64
}

// errStopWalk, returned by a walk callback, stops the re-run; the walk
// still counts the remaining segments.
var errStopWalk = errors.New("stop walking")

// walkExport re-runs the session's log and calls fn with every segment and
// state change in log order: for each input, an inbound segment first, then
// what it caused ordered by time, state changes before segments at the same
// time. After fn returns errStopWalk, the rest of the log is only counted.
func (ss *session) walkExport(fn func(*exportItem) error) (exportSummary, error) {
	var (
		sum     exportSummary
		rr      = newRerun()
		stopped bool
		// The outputs of the last input, until its output record arrives.
		pending    []exportItem
		pendingOut [][]byte
		havePend   bool
		locals     = map[fsm.EndpointID]netip.AddrPort{}
	)
	flush := func(logged *pb.LogRecord) error {
		if !havePend {
			return nil
		}
		havePend = false
		items := pending
		if logged != nil {
			got := logged.GetOutput().GetPackets()
			same := len(got) == len(pendingOut)
			for i := 0; same && i < len(got); i++ {
				same = bytes.Equal(got[i], pendingOut[i])
			}
			if !same {
				if sum.differs == 0 {
					sum.differs = logged.Index
				}
				// Keep the re-run's state changes; take the packets from the log.
				kept := items[:0:0]
				for _, it := range items {
					if it.packet == nil {
						kept = append(kept, it)
					}
				}
				for _, p := range got {
					kept = append(kept, exportItem{time: logged.Time.AsDuration(), packet: p})
				}
				items = kept
			}
		}
		for i := range items {
			if err := fn(&items[i]); errors.Is(err, errStopWalk) {
				stopped = true // count the rest
				return nil
			} else if err != nil {
				return err
			}
		}
		return nil
	}
	err := ss.records(0, func(rec *pb.LogRecord) error {
		switch body := rec.Body.(type) {
		case *pb.LogRecord_Start:
			sum.createTime = body.Start.GetCreateTime().AsTime()
			if err := rr.Begin(body.Start); err != nil {
				return errorf(kindDataLoss, "re-running %s: %v", ss.name, err)
			}
		case *pb.LogRecord_Input:
			if rr.Machine == nil {
				return errorf(kindDataLoss, "re-running %s: record %d comes before the start record", ss.name, rec.Index)
			}
			in := body.Input
			if in.GetSegment() != nil {
				sum.segments++
			}
			if stopped {
				return nil
			}
			if err := flush(nil); err != nil {
				return err
			}
			pending, pendingOut, havePend = pending[:0], nil, true
			m := rr.Machine
			t0 := rec.Time.AsDuration()
			_, err := m.Apply(in)
			rd := m.Engine.Ready()
			if err != nil {
				// The live run accepted it (refused inputs are not logged);
				// the difference shows as the packets differing.
				rd = fsm.Ready{}
			}
			m.Observe(&rd)
			title := explanationsText(rd.Explanations)
			if seg := in.GetSegment(); seg != nil {
				it := exportItem{time: t0, packet: seg.GetIpPacket(), inbound: true, title: title}
				it.dropped, it.answered, it.held, it.note = fateOf(rd.Explanations)
				pending = append(pending, it)
			}
			var caused []exportItem
			for i := range rd.Transitions {
				t := &rd.Transitions[i]
				local, ok := locals[t.Endpoint]
				if !ok {
					if info, found := m.Engine.Endpoint(t.Endpoint); found {
						local = info.Local
						locals[t.Endpoint] = local
					}
				}
				caused = append(caused, exportItem{time: t.Time, local: local, state: t.To})
			}
			for i := range rd.Packets {
				p := &rd.Packets[i]
				data := bytes.Clone(p.Data)
				pendingOut = append(pendingOut, data)
				caused = append(caused, exportItem{time: p.Time, packet: data, title: title})
			}
			// Stable: state changes (listed first) stay before segments
			// of the same time, and each kind keeps the engine's order.
			sort.SliceStable(caused, func(i, j int) bool { return caused[i].time < caused[j].time })
			pending = append(pending, caused...)
		case *pb.LogRecord_Output:
			sum.segments += len(body.Output.GetPackets())
			if stopped {
				return nil
			}
			if err := flush(rec); err != nil {
				return err
			}
		default:
			return errorf(kindDataLoss, "record %d of %s is empty or of an unknown kind", rec.Index, ss.name)
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	if !stopped {
		// An input still in flight (its output not yet written).
		if err := flush(nil); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// fateOf says what the engine did with an inbound segment, from its
// explanations: dropped without a reply, answered (an ACK or RST) and
// otherwise discarded, or held for later (out-of-order data). A SYN or
// SYN,ACK answered by the handshake's next segment was taken, not
// discarded.
func fateOf(xs []fsm.Explanation) (dropped, answered, held bool, note string) {
	for i := len(xs) - 1; i >= 0; i-- {
		x := &xs[i]
		switch x.Action {
		case fsm.ActionDropped:
			return true, false, false, "dropped: " + x.Code.String()
		case fsm.ActionAnswered:
			switch x.Code {
			case fsm.CodeListenSynAccepted, fsm.CodeSynCookieSent, fsm.CodeSynSentSynAckEstablished, fsm.CodeSynSentSimultaneousOpen:
				return false, false, false, ""
			}
			return false, true, false, "answered: " + x.Code.String()
		case fsm.ActionQueued:
			return false, false, true, "held: " + x.Code.String()
		case fsm.ActionAccepted:
			return false, false, false, ""
		}
	}
	return false, false, false, ""
}

// explanationsText is an input's explanations, one per line, as
// "CODE (RFC section): text".
func explanationsText(xs []fsm.Explanation) string {
	var b strings.Builder
	for i := range xs {
		if i > 0 {
			b.WriteByte('\n')
		}
		x := &xs[i]
		fmt.Fprintf(&b, "%s (%s): %s", x.Code, x.Section(), x.Text())
	}
	return b.String()
}

// exportPcap writes the session's segments to w as a pcap file, inbound
// and outbound in log order, and returns how many it wrote. Timestamps are
// the session's creation time plus the session clock.
func (ss *session) exportPcap(w io.Writer) (int, error) {
	pw, err := pcap.NewWriter(w)
	if err != nil {
		return 0, err
	}
	return ss.walkPackets(func(it *exportItem) error {
		return pw.WritePacket(ss.createTime.Add(it.time), it.packet)
	})
}

// walkPackets is walkExport over the items that carry a packet; it
// returns how many it passed to write.
func (ss *session) walkPackets(write func(*exportItem) error) (int, error) {
	n := 0
	_, err := ss.walkExport(func(it *exportItem) error {
		if it.packet == nil {
			return nil
		}
		n++
		return write(it)
	})
	return n, err
}

// exportPcapng writes the session's segments to w as a pcapng file, as
// exportPcap does, each with its direction and, as its comment, the
// engine's explanations of the input it belongs to (and what became of an
// inbound segment).
func (ss *session) exportPcapng(w io.Writer) (int, error) {
	pw, err := pcapng.NewWriter(w, "tcpstated "+ss.name)
	if err != nil {
		return 0, err
	}
	return ss.walkPackets(func(it *exportItem) error {
		dir, comment := pcapng.Outbound, it.title
		if it.inbound {
			dir = pcapng.Inbound
			if it.note != "" {
				comment = it.note + "\n" + comment
			}
		}
		return pw.WritePacket(ss.createTime.Add(it.time), it.packet, dir, strings.TrimSpace(comment))
	})
}

// drawDiagram draws the session's first max segments, and the state
// changes up to the last of them, as a ladder diagram.
func (ss *session) drawDiagram(w io.Writer, max int, opts diagram.Options) (drawn, total int, err error) {
	var recs []diagram.Record
	sum, err := ss.walkExport(func(it *exportItem) error {
		if it.packet == nil {
			recs = append(recs, diagram.StateChange{Time: it.time, Endpoint: it.local, State: it.state})
			return nil
		}
		if drawn == max {
			return errStopWalk
		}
		src, dst, tcp, err := fsm.ParsePacket(it.packet)
		if err != nil {
			return nil // a stored packet that does not decode (never written by this server)
		}
		seg, err := fsm.ParseSegment(tcp)
		if err != nil {
			return nil
		}
		drawn++
		recs = append(recs, diagram.Packet{
			Time: it.time,
			Src:  netip.AddrPortFrom(src, seg.SrcPort), Dst: netip.AddrPortFrom(dst, seg.DstPort),
			Segment: seg, Dropped: it.dropped, BadChecksum: it.inbound && !fsm.TCPChecksumValid(src, dst, tcp),
			Answered: it.answered, Held: it.held, Note: it.note, Title: it.title,
		})
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	title := ss.name
	if drawn < sum.segments {
		title += fmt.Sprintf(" (the first %d of %d segments)", drawn, sum.segments)
	}
	if sum.differs != 0 {
		title += fmt.Sprintf(" (re-running the log differs from it at record %d: logged segments shown)", sum.differs)
	}
	if err := diagram.Render(w, diagram.FromPackets(title, recs), opts); err != nil {
		return 0, 0, errorf(kindInternal, "drawing %s: %v", ss.name, err)
	}
	return drawn, sum.segments, nil
}

func (h *logServer) ExportPcap(ctx context.Context, req *pb.ExportPcapRequest) (*pb.ExportPcapResponse, error) {
	ss, err := h.s.lookupName(ctx, "name", req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	var buf bytes.Buffer
	var n int
	switch req.GetFormat() {
	case pb.CaptureFormat_CAPTURE_FORMAT_UNSPECIFIED, pb.CaptureFormat_CAPTURE_FORMAT_PCAP:
		n, err = ss.exportPcap(&buf)
	case pb.CaptureFormat_CAPTURE_FORMAT_PCAPNG:
		n, err = ss.exportPcapng(&buf)
	default:
		return nil, toStatus(invalidf("format: %d is not a capture format", req.GetFormat()))
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ExportPcapResponse{Pcap: buf.Bytes(), PacketCount: uint32(n)}, nil
}

func (h *logServer) DrawDiagram(ctx context.Context, req *pb.DrawDiagramRequest) (*pb.DrawDiagramResponse, error) {
	ss, err := h.s.lookupName(ctx, "name", req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	max := int(req.GetMaxSegments())
	switch {
	case max == 0:
		max = defaultDiagramSegments
	case max > maxDiagramSegments:
		return nil, toStatus(invalidf("max_segments: %d is above the maximum %d", max, maxDiagramSegments))
	}
	var buf bytes.Buffer
	drawn, total, err := ss.drawDiagram(&buf, max, diagram.Options{Relative: req.GetRelative(), TCPOptions: req.GetTcpOptions()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.DrawDiagramResponse{Svg: buf.Bytes(), SegmentsDrawn: uint32(drawn), SegmentsTotal: uint32(total)}, nil
}

// explainRecords fills in the explanations of the OUTPUT records among
// recs (a page of ListRecords, in index order) by re-running the log from
// its start up to the last of them: the log does not store explanations.
func (ss *session) explainRecords(recs []*pb.Record) error {
	want := map[uint64]*pb.Record{}
	var last uint64
	for _, r := range recs {
		if r.Kind == pb.RecordKind_RECORD_KIND_OUTPUT && r.GetOutput() != nil {
			want[r.Index] = r
			last = max(last, r.Index)
		}
	}
	if len(want) == 0 {
		return nil
	}
	var (
		rr   = newRerun()
		expl []*pb.Explanation
	)
	err := ss.records(0, func(rec *pb.LogRecord) error {
		in, err := startOrInput(rr, ss.name, rec)
		if err != nil {
			return err
		}
		switch {
		case in != nil:
			_, err := rr.Machine.Apply(in)
			rd := rr.Machine.Engine.Ready()
			expl = expl[:0:0]
			if err == nil {
				rr.Machine.Observe(&rd)
				for i := range rd.Explanations {
					expl = append(expl, rr.Machine.Explanation(&rd.Explanations[i]))
				}
			}
		case rec.GetOutput() != nil:
			if r, ok := want[rec.Index]; ok {
				r.GetOutput().Explanations = expl
			}
		}
		if rec.Index >= last {
			return errStop
		}
		return nil
	})
	return err
}
