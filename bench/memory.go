package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// memResult is what n idle sessions cost the server process.
type memResult struct {
	sessions       int
	rssBefore      int64 // VmRSS with no session
	rssAfter       int64 // VmRSS with the sessions, idle
	heapBefore     float64
	heapAfter      float64 // go_memstats_heap_inuse_bytes after a GC
	fds            int     // open files with the sessions
	logFDs         int     // of which session logs (at most --max-open-logs)
	took           time.Duration
	firstErr       error
	perSessionRSS  float64
	perSessionHeap float64
}

// idleMemory creates n sessions on p, each with a listener and one
// established connection (fixed ISNs), and reads the process's memory
// before and after, once the calls have stopped.
func idleMemory(ctx context.Context, p *process, n int) (memResult, error) {
	m := memResult{sessions: n}
	conns, err := dial(p.grpcAddr, 4)
	if err != nil {
		return m, err
	}
	defer closeAll(conns)
	// A GC, and the freed heap returned to the OS, before each reading
	// (the server's --debug-endpoints), so both show what the server holds.
	settle := func() error {
		time.Sleep(500 * time.Millisecond)
		return p.freeOSMemory()
	}
	if err := settle(); err != nil {
		return m, err
	}
	if m.rssBefore, err = p.rss(); err != nil {
		return m, err
	}
	if m.heapBefore, err = p.metric("go_memstats_heap_inuse_bytes"); err != nil {
		return m, err
	}
	start := time.Now()
	const workers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range workers {
		wg.Go(func() {
			conn := conns[w%len(conns)]
			for i := w; i < n && ctx.Err() == nil; i += workers {
				if err := idleSession(ctx, conn, fmt.Sprintf("sessions/idle-%d", i)); err != nil {
					mu.Lock()
					if m.firstErr == nil {
						m.firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	m.took = time.Since(start)
	if m.firstErr != nil {
		return m, m.firstErr
	}
	if err := settle(); err != nil {
		return m, err
	}
	if m.rssAfter, err = p.rss(); err != nil {
		return m, err
	}
	if m.heapAfter, err = p.metric("go_memstats_heap_inuse_bytes"); err != nil {
		return m, err
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", p.Pid())
	if ents, err := os.ReadDir(fdDir); err == nil {
		m.fds = len(ents)
		for _, e := range ents {
			if t, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && strings.HasSuffix(t, ".log") {
				m.logFDs++
			}
		}
	}
	m.perSessionRSS = float64(m.rssAfter-m.rssBefore) / float64(n)
	m.perSessionHeap = (m.heapAfter - m.heapBefore) / float64(n)
	return m, nil
}

// idleSession creates a session with a listener and an ESTABLISHED
// connection from the peer, then leaves it alone.
func idleSession(ctx context.Context, conn *grpc.ClientConn, name string) error {
	if err := setupSessions(ctx, conn, []string{name}); err != nil {
		return err
	}
	c := pb.NewSegmentServiceClient(conn)
	p := newPeer(0)
	var buf []byte
	for range 2 { // SYN, ACK
		buf = p.next().packet(buf)
		if _, err := c.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: name, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: buf}}); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
