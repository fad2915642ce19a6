package machine

import pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

// A batch of inputs (the packets of one ExchangeSegments message) has the
// events of its digests allocated together: two allocations for the whole
// batch instead of two per input (every data segment in order reports
// EVENT_KIND_DATA_READABLE). The events are shared read-only, by the log
// records and the response, like those allocated one by one; the room
// lives as long as any of them. (Emitted segments are not batched: the
// bulk path emits few, mostly delayed ACKs, and a room for them cost more
// than it saved.)

// batchRoom is the room left for the events of the current batch.
type batchRoom struct {
	size      int // the batch's inputs
	events    slab[pb.Event]
	eventPtrs slab[*pb.Event]
}

// StartBatch makes room for the events of about n inputs; the digests and
// the API view of the batch take their events from it until EndBatch.
// The room is allocated on a machine's first batch and kept, so that a
// session that never streams does not carry it.
func (m *Machine) StartBatch(n int) {
	if m.batch == nil {
		m.batch = new(batchRoom)
	}
	*m.batch = batchRoom{size: n, events: slab[pb.Event]{want: n}, eventPtrs: slab[*pb.Event]{want: n}}
}

// EndBatch drops the batch's room: later events are allocated one by one.
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

// slab hands out zero values of T from one allocation of room for want
// values, made on the first take; past it, or outside a batch, each take
// allocates on its own.
type slab[T any] struct {
	want int
	free []T
}

// take returns n zero values, their capacity cut to n.
func (s *slab[T]) take(n int) []T {
	if n > len(s.free) || n == 0 {
		if s.want <= 0 {
			return make([]T, n)
		}
		s.free, s.want = make([]T, max(s.want, n)), 0
	}
	v := s.free[:n:n]
	s.free = s.free[n:]
	return v
}
