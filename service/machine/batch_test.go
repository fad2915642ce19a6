package machine

import (
	"testing"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestBatchRoom: the events of a batch come zeroed and distinct, each
// slice with its capacity cut to its length, whether from the batch's
// room, past it, or outside a batch, which never writes the shared
// noBatch.
func TestBatchRoom(t *testing.T) {
	tests := []struct {
		name  string
		batch int   // StartBatch's n; 0: no batch
		takes []int // events taken per digest
	}{
		{"no batch", 0, []int{1, 2}},
		{"within the room", 4, []int{1, 2, 1}},
		{"past the room", 2, []int{1, 1, 3}},
		{"first take larger than the room", 1, []int{3, 1}},
		{"room used up exactly", 40, []int{15, 2, 20, 3, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Machine{}
			if tt.batch > 0 {
				m.StartBatch(tt.batch)
			}
			seenEv := map[*pb.Event]bool{}
			for _, n := range tt.takes {
				evs := m.room().newEvents(n)
				if len(evs) != n || cap(evs) != n {
					t.Fatalf("newEvents(%d): len %d cap %d", n, len(evs), cap(evs))
				}
				for _, e := range evs {
					if e == nil || seenEv[e] || e.Endpoint != "" || e.Kind != 0 {
						t.Fatalf("newEvents(%d): %p not a new zero event", n, e)
					}
					seenEv[e] = true
					e.Endpoint = "used"
				}
			}
			m.EndBatch()
			if r := m.room(); r.events.want != 0 || len(r.events.free) != 0 || len(r.eventPtrs.free) != 0 {
				t.Fatalf("after EndBatch: %+v", r.events)
			}
			if noBatch.size != 0 || noBatch.events.want != 0 || noBatch.events.free != nil || noBatch.eventPtrs.free != nil {
				t.Fatalf("noBatch written: %+v", noBatch)
			}
		})
	}
}
