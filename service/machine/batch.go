package machine

import (
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// A batch of inputs (the packets of one ExchangeSegments message) has the
// small messages of its digests and of its response allocated together:
// a few allocations for the whole batch instead of a few per input. The
// messages are shared read-only, by the log records and the response, like
// those allocated one by one; a chunk lives as long as any of them.

// batchRoom is the room left for the messages of the current batch.
type batchRoom struct {
	size      int // the batch's inputs
	events    slab[pb.Event]
	eventPtrs slab[*pb.Event]
	segments  slab[pb.Segment]
	times     slab[durationpb.Duration]
}

// StartBatch makes room for the outputs of about n inputs; the digests and
// the API view of the batch take their messages from it until EndBatch.
// The room is allocated on a machine's first batch and kept, so that a
// session that never streams does not carry it.
func (m *Machine) StartBatch(n int) {
	if m.batch == nil {
		m.batch = new(batchRoom)
	}
	*m.batch = batchRoom{size: n, events: slab[pb.Event]{want: n, chunk: n}, eventPtrs: slab[*pb.Event]{want: n, chunk: n},
		segments: slab[pb.Segment]{want: n, chunk: segmentChunk}, times: slab[durationpb.Duration]{want: n, chunk: segmentChunk}}
}

// EndBatch drops the batch's room: later outputs allocate their own.
func (m *Machine) EndBatch() {
	if m.batch != nil {
		*m.batch = batchRoom{}
	}
}

// noBatch is the room outside a batch: none, so every take allocates. It
// is shared by every machine and never written (slab.take writes only a
// slab with room to hand out).
var noBatch batchRoom

// room is the current batch's room, or noBatch.
func (m *Machine) room() *batchRoom {
	if m.batch != nil {
		return m.batch
	}
	return &noBatch
}

// newEvents returns n new zero events.
func (r *batchRoom) newEvents(n int) []*pb.Event {
	evs, vals := r.eventPtrs.take(n), r.events.take(n)
	for i := range vals {
		evs[i] = &vals[i]
	}
	return evs
}

// newSegment returns a new zero segment.
func (r *batchRoom) newSegment() *pb.Segment { return &r.segments.take(1)[0] }

// newDuration returns d as a new Duration.
func (r *batchRoom) newDuration(d time.Duration) *durationpb.Duration {
	p := &r.times.take(1)[0]
	p.Seconds, p.Nanos = int64(d/time.Second), int32(d%time.Second)
	return p
}

// segmentChunk bounds one allocation of segments (large messages), so that
// a batch whose inputs emit little does not allocate room for all of them;
// events (small, and one per data segment) get the batch's room at once.
const segmentChunk = 16

// slab hands out zero values of T from chunks of up to chunk values, while
// want (the room still to allocate for the batch) lasts; past it, or
// outside a batch, each take allocates on its own.
type slab[T any] struct {
	want, chunk int
	free        []T
}

// take returns n zero values, their capacity cut to n.
func (s *slab[T]) take(n int) []T {
	if n > len(s.free) || n == 0 {
		if s.want <= 0 {
			return make([]T, n)
		}
		size := max(min(s.want, s.chunk), n)
		s.free, s.want = make([]T, size), s.want-size
	}
	v := s.free[:n:n]
	s.free = s.free[n:]
	return v
}
