package service

import (
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
)

// The outbound queue is the session's "wire": every emitted segment goes
// there unless a WatchSegments stream is open, which receives it instead.
// Entries share the packet copies made for the log record; they are
// decoded only when a client takes them.

// outSeg is a segment on its way to a client.
type outSeg struct {
	raw      []byte
	dir      pb.Direction
	t        time.Duration
	endpoint string
}

func (o *outSeg) view() *pb.Segment { return machine.SegmentView(o.raw, o.dir, o.t, o.endpoint) }

// outQueue is a bounded FIFO that discards its oldest entry when full.
type outQueue struct {
	segs    []outSeg
	head    int
	dropped uint64
}

func (q *outQueue) len() int { return len(q.segs) - q.head }

func (q *outQueue) push(max int, s outSeg) {
	if q.len() >= max {
		q.segs[q.head] = outSeg{}
		q.head++
		q.dropped++
	}
	if q.head > 0 && q.head >= len(q.segs)/2 && len(q.segs) == cap(q.segs) {
		n := copy(q.segs, q.segs[q.head:])
		clear(q.segs[n:])
		q.segs = q.segs[:n]
		q.head = 0
	}
	q.segs = append(q.segs, s)
}

// take removes up to n entries (all when n <= 0), oldest first.
func (q *outQueue) take(n int) []outSeg {
	if n <= 0 || n > q.len() {
		n = q.len()
	}
	out := make([]outSeg, n)
	copy(out, q.segs[q.head:])
	clear(q.segs[q.head : q.head+n])
	q.head += n
	if q.head == len(q.segs) {
		q.segs, q.head = q.segs[:0], 0
		if cap(q.segs) > 256 {
			q.segs = nil // an idle session keeps nothing
		}
	}
	return out
}

// watcher is one WatchSegments stream.
type watcher struct {
	ch      chan []outSeg
	inbound bool
	err     error // why the stream ended, set before ch is closed
	done    bool
}

const watcherBuffer = 256 // batches a watcher may fall behind before it is dropped

func (w *watcher) end(err error) {
	if !w.done {
		w.done = true
		w.err = err
		close(w.ch)
	}
}

// dispatchLocked hands one input's segments to the watchers, or to the
// queue when none is open (or every one fell behind).
func (s *session) dispatchLocked(in *pb.Input, t0 time.Duration, rd *fsm.Ready, d *pb.OutputDigest) {
	if len(s.watchers) == 0 {
		for i := range rd.Packets {
			s.out.push(s.svc.cfg.Limits.MaxOutboundQueue, outSeg{raw: d.Packets[i], dir: pb.Direction_DIRECTION_OUTBOUND, t: rd.Packets[i].Time, endpoint: s.m.EndpointName(rd.Packets[i].Endpoint)})
		}
		return
	}
	var inbound *outSeg
	if seg, ok := in.Kind.(*pb.Input_Segment); ok {
		inbound = &outSeg{raw: seg.Segment.GetIpPacket(), dir: pb.Direction_DIRECTION_INBOUND, t: t0, endpoint: inboundEndpoint(s.m, rd)}
	}
	out := make([]outSeg, 0, len(rd.Packets)+1)
	for i := range rd.Packets {
		out = append(out, outSeg{raw: d.Packets[i], dir: pb.Direction_DIRECTION_OUTBOUND, t: rd.Packets[i].Time, endpoint: s.m.EndpointName(rd.Packets[i].Endpoint)})
	}
	var withIn []outSeg
	delivered := false
	live := s.watchers[:0]
	for _, w := range s.watchers {
		batch := out
		if w.inbound && inbound != nil {
			if withIn == nil {
				withIn = append(append(make([]outSeg, 0, len(out)+1), *inbound), out...)
			}
			batch = withIn
		}
		if len(batch) == 0 {
			live = append(live, w)
			continue
		}
		select {
		case w.ch <- batch:
			delivered = true
			live = append(live, w)
		default:
			w.end(exhaustedf("the watch fell %d batches behind and was dropped; watch again to drain the outbound queue", watcherBuffer))
		}
	}
	clear(s.watchers[len(live):])
	s.watchers = live
	if !delivered {
		for _, o := range out {
			s.out.push(s.svc.cfg.Limits.MaxOutboundQueue, o)
		}
	}
}

// inboundEndpoint names the endpoint an inbound segment was demultiplexed
// to: the first endpoint the engine's explanations name.
func inboundEndpoint(m *machine.Machine, rd *fsm.Ready) string {
	for i := range rd.Explanations {
		if id := rd.Explanations[i].Endpoint; id != 0 {
			return m.EndpointName(id)
		}
	}
	return ""
}
