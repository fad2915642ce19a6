// Pacing: the exchange loop waits, before its next request, until the
// watch has written the segments of its last response.

package bridge

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// wire is the device's writer: the watch writes every segment (watched),
// and the exchange loop waits until the segments its response listed have
// been written (settle). Segments are matched by a hash of their bytes;
// identical segments are counted. The watch remembers the last
// wireMemory segments it wrote that nobody waited for (those of
// application calls and timers), forgetting the oldest.
type wire struct {
	mu      sync.Mutex
	seed    maphash.Seed
	written map[uint64]int // written, not yet claimed by settle
	ring    []uint64       // written keys in order, for forgetting
	next    int
	pending map[uint64]int // claimed by settle, not yet written
	drained chan struct{}  // closed when pending empties
	lost    chan struct{}  // closed when a watch was dropped (and replaced)
	write   func([]byte)
	direct  atomic.Uint64 // segments settle wrote itself
}

const wireMemory = 16384

// settleTimeout bounds how long the exchange loop waits for the watch (a
// loaded machine can hold it up for a while); after a dropped watch it
// waits settleAfterLoss for the new watch to drain the outbound queue.
const (
	settleTimeout   = 2 * time.Second
	settleAfterLoss = 100 * time.Millisecond
)

func newWire(write func([]byte)) *wire {
	return &wire{seed: maphash.MakeSeed(), written: map[uint64]int{}, ring: make([]uint64, wireMemory),
		pending: map[uint64]int{}, lost: make(chan struct{}), write: write}
}

// watchLost tells a waiting settle that segments may never come: the
// watch was dropped, and the outbound queue may have overflowed meanwhile.
func (w *wire) watchLost() {
	w.mu.Lock()
	close(w.lost)
	w.lost = make(chan struct{})
	w.mu.Unlock()
}

// watched writes a segment from the watch.
func (w *wire) watched(raw []byte) {
	w.write(raw)
	k := maphash.Bytes(w.seed, raw)
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.pending[k]; n > 0 {
		if n == 1 {
			delete(w.pending, k)
		} else {
			w.pending[k] = n - 1
		}
		if len(w.pending) == 0 && w.drained != nil {
			close(w.drained)
			w.drained = nil
		}
		return
	}
	if old := w.ring[w.next]; w.written[old] > 0 {
		if w.written[old]--; w.written[old] == 0 {
			delete(w.written, old)
		}
	}
	w.ring[w.next] = k
	w.next = (w.next + 1) % len(w.ring)
	w.written[k]++
}

// settle returns once every segment of out has been written by the
// watch, or after timeout, when it writes the missing ones itself.
func (w *wire) settle(ctx context.Context, out *pb.Outputs, timeout time.Duration) {
	segs := out.GetSegments()
	if len(segs) == 0 {
		return
	}
	w.mu.Lock()
	for _, s := range segs {
		k := maphash.Bytes(w.seed, s.Raw)
		if w.written[k] > 0 {
			w.written[k]-- // already written (an emptied entry leaves its ring slot to age out)
			if w.written[k] == 0 {
				delete(w.written, k)
			}
			continue
		}
		w.pending[k]++
	}
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	w.drained = make(chan struct{})
	drained, lost := w.drained, w.lost
	w.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-drained:
		return
	case <-ctx.Done():
	case <-t.C:
	case <-lost:
		t.Reset(settleAfterLoss)
		select {
		case <-drained:
			return
		case <-ctx.Done():
		case <-t.C:
		}
	}
	w.mu.Lock()
	missing := w.pending
	w.pending, w.drained = map[uint64]int{}, nil
	w.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for _, s := range segs {
		k := maphash.Bytes(w.seed, s.Raw)
		if missing[k] > 0 {
			missing[k]--
			w.direct.Add(1)
			w.write(s.Raw)
		}
	}
}

// notifier wakes every waiter at once: wait returns a channel that the
// next notify closes.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}
