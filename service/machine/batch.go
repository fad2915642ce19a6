package machine

import pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

// A batch of inputs (the packets of one ExchangeSegments message) has its
// digests' events allocated together: one allocation of Events and one of
// pointers for the whole batch instead of two per input. The events are
// the digests' own, shared read-only by the log records and the response
// like those allocated one by one; the chunk lives as long as any of them.

// eventChunk is the room left for the events of the current batch; want
// is the size of the room still to allocate, on the batch's first event.
type eventChunk struct {
	want int
	free []pb.Event
	ptrs []*pb.Event
}

// StartBatch makes room for the events of about n inputs; the digests of
// the batch take their events from it until EndBatch.
func (m *Machine) StartBatch(n int) { m.batch = eventChunk{want: n} }

// EndBatch drops the batch's room: later digests allocate their own.
func (m *Machine) EndBatch() { m.batch = eventChunk{} }

// events returns n zero events, from the batch's room when it has enough.
func (c *eventChunk) events(n int) []*pb.Event {
	if n > len(c.free) && c.want > 0 {
		size := max(c.want, n)
		c.free, c.ptrs, c.want = make([]pb.Event, size), make([]*pb.Event, size), 0
	}
	if n > len(c.free) {
		evs := make([]*pb.Event, n)
		for i := range evs {
			evs[i] = &pb.Event{}
		}
		return evs
	}
	evs := c.ptrs[:n:n]
	for i := range evs {
		evs[i] = &c.free[i]
	}
	c.free, c.ptrs = c.free[n:], c.ptrs[n:]
	return evs
}
