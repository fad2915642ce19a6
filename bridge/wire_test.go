package bridge

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestWireWritesInWatchOrder: the watch writes every segment, in its
// order; settle waits until the segments of a response have been written,
// whether the watch brought them before or after, and writes them itself
// only if the watch never does.
func TestWireWritesInWatchOrder(t *testing.T) {
	cases := []struct {
		name          string
		before, after string // watched before settle, and while it waits
		response      string // the response's segments
		want          string // written, in order
		direct        uint64
	}{
		{"watch first", "ab", "", "ab", "ab", 0},
		{"response first", "", "ab", "ab", "ab", 0},
		{"split", "a", "b", "ab", "ab", 0},
		{"timers and calls nobody waits for", "xay", "bz", "ab", "xaybz", 0},
		{"the same bytes twice", "aa", "", "aa", "aa", 0},
		{"never watched: written after the timeout", "", "", "ab", "ab", 2},
		{"one of two never watched", "a", "", "ab", "ab", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got strings.Builder
			w := newWire(func(p []byte) { mu.Lock(); got.Write(p); mu.Unlock() })
			for _, c := range tc.before {
				w.watched([]byte{byte(c)})
			}
			go func() {
				time.Sleep(20 * time.Millisecond)
				for _, c := range tc.after {
					w.watched([]byte{byte(c)})
				}
			}()
			out := &pb.Outputs{}
			for _, c := range tc.response {
				out.Segments = append(out.Segments, &pb.Segment{Raw: []byte{byte(c)}})
			}
			start := time.Now()
			w.settle(context.Background(), out, 300*time.Millisecond)
			if tc.direct == 0 && time.Since(start) > 250*time.Millisecond {
				t.Errorf("settle waited %v for segments the watch brought", time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if got.String() != tc.want || w.direct.Load() != tc.direct {
				t.Errorf("written %q with %d direct, want %q with %d", got.String(), w.direct.Load(), tc.want, tc.direct)
			}
		})
	}
}

// TestWireWritesWhatALostWatchDropped: when the watch is dropped, settle
// stops waiting soon after and writes what never came.
func TestWireWritesWhatALostWatchDropped(t *testing.T) {
	var mu sync.Mutex
	var got strings.Builder
	w := newWire(func(p []byte) { mu.Lock(); got.Write(p); mu.Unlock() })
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.watchLost()
	}()
	start := time.Now()
	w.settle(context.Background(), &pb.Outputs{Segments: []*pb.Segment{{Raw: []byte("a")}}}, time.Minute)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("settle waited %v after the watch was lost", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.String() != "a" || w.direct.Load() != 1 {
		t.Errorf("written %q with %d direct, want the lost segment written directly", got.String(), w.direct.Load())
	}
}
