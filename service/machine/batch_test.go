package machine

import (
	"testing"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestBatchEvents: the events of a batch's digests come zeroed and
// distinct from one room of the announced size, each slice with its
// capacity cut to its length; past the room, and outside a batch, each
// event is allocated on its own.
func TestBatchEvents(t *testing.T) {
	tests := []struct {
		name  string
		batch int   // StartBatch's n; 0: no batch
		takes []int // events taken per digest
	}{
		{"no batch", 0, []int{1, 2}},
		{"within the room", 4, []int{1, 2, 1}},
		{"past the room", 2, []int{1, 1, 3}},
		{"first take larger than the room", 1, []int{3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Machine{}
			if tt.batch > 0 {
				m.StartBatch(tt.batch)
			}
			seen := map[*pb.Event]bool{}
			for _, n := range tt.takes {
				evs := m.batch.events(n)
				if len(evs) != n || cap(evs) != n {
					t.Fatalf("events(%d): len %d cap %d", n, len(evs), cap(evs))
				}
				for _, e := range evs {
					if e == nil || seen[e] || e.Endpoint != "" || e.Kind != 0 {
						t.Fatalf("events(%d): %p not a new zero event", n, e)
					}
					seen[e] = true
					e.Endpoint = "used"
				}
			}
			m.EndBatch()
			if m.batch.want != 0 || len(m.batch.free) != 0 {
				t.Fatalf("after EndBatch: %+v", m.batch)
			}
		})
	}
}
