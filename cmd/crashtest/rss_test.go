package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/testserver"
)

// vmRSS reads a process's resident set size from /proc/PID/status.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// settledRSS asks the server to return freed memory to the OS
// (--debug-endpoints: POST /debug/free-os-memory runs debug.FreeOSMemory,
// a full GC plus scavenging everything free) and reads its RSS. Without
// that, the Go runtime keeps freed pages for a while and RSS would say
// more about the scavenger's timing than about leaks.
func settledRSS(t *testing.T, srv *testserver.Server) int64 {
	t.Helper()
	for range 2 {
		resp, err := http.Post("http://"+srv.HTTPAddr+"/debug/free-os-memory", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("free-os-memory: %s", resp.Status)
		}
	}
	return vmRSS(t, srv.Pid())
}

// heapInuse reads go_memstats_heap_inuse_bytes from the server's /metrics.
func heapInuse(t *testing.T, srv *testserver.Server) int64 {
	t.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(f)
		}
	}
	t.Fatal("no go_memstats_heap_inuse_bytes in /metrics")
	return 0
}

// lifecycle runs one session through its life: create, listen, the
// peer's handshake, accept, the peer's close and ours, and the final ACK.
func lifecycle(ctx context.Context, conn *grpc.ClientConn, id string) error {
	s, e, g := pb.NewSessionServiceClient(conn), pb.NewEndpointServiceClient(conn), pb.NewSegmentServiceClient(conn)
	name := "sessions/" + id
	opts := &pb.SessionOptions{IsnMode: pb.IsnMode_ISN_MODE_FIXED, FixedIsn: 1000, Msl: durationpb.New(time.Second)}
	if _, err := s.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: id, Session: &pb.Session{Options: opts}}); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if _, err := e.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: name, EndpointId: "l",
		Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:80"}}}); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	submit := func(seq, ack uint32, flags fsm.Flags) error {
		sg := fsm.Segment{SrcPort: 40000, DstPort: serverPort, Seq: fsm.Seq(seq), Ack: fsm.Seq(ack), Flags: flags, Window: 65535}
		pkt := fsm.AppendPacket(nil, clientAddr, serverAddr, &sg)
		_, err := g.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: name, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: pkt}})
		return err
	}
	if err := submit(100, 0, fsm.FlagSYN); err != nil {
		return fmt.Errorf("SYN: %w", err)
	}
	if err := submit(101, 1001, fsm.FlagACK); err != nil {
		return fmt.Errorf("ACK: %w", err)
	}
	acc, err := e.AcceptConnection(ctx, &pb.AcceptConnectionRequest{Name: name + "/endpoints/l"})
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	if err := submit(101, 1001, fsm.FlagFIN|fsm.FlagACK); err != nil {
		return fmt.Errorf("FIN: %w", err)
	}
	r, err := e.CloseEndpoint(ctx, &pb.CloseEndpointRequest{Name: acc.Endpoint.Name})
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if r.Endpoint.StateName != "LAST-ACK" {
		return fmt.Errorf("after close: %s", r.Endpoint.StateName)
	}
	if err := submit(102, 1002, fsm.FlagACK); err != nil {
		return fmt.Errorf("last ACK: %w", err)
	}
	return nil
}

// parallel runs fn for ids [0, n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// The rule: sessions leave nothing behind. 10 000 sessions live at once,
// each through a handshake and a close, then all deleted: the server's
// RSS returns close to where it started (after the same warm-up). Measured
// on the real binary (fsync=never) from /proc/PID/status, with the Go
// runtime asked to return free memory first (see settledRSS).
// TCPSTATED_RSS_SESSIONS changes the count.
func TestSessionsLeaveNoMemoryBehind(t *testing.T) {
	n := envInt(t, "TCPSTATED_RSS_SESSIONS", 10000)
	if testing.Short() {
		n = min(n, 1000)
	}
	srv := testserver.StartT(t, testserver.Config{Binary: serverBin, DataDir: t.TempDir(), Args: []string{"--fsync", "never", "--max-sessions", strconv.Itoa(2 * n), "--debug-endpoints"}})
	defer srv.Stop(60 * time.Second)
	conn := dial(t, srv)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sc := pb.NewSessionServiceClient(conn)
	del := func(prefix string) func(i int) error {
		return func(i int) error {
			_, err := sc.DeleteSession(ctx, &pb.DeleteSessionRequest{Name: fmt.Sprintf("sessions/%s%d", prefix, i)})
			return err
		}
	}
	const workers = 32

	// Warm-up: the same work on a few sessions, so that connection
	// buffers, pools and goroutine stacks exist before the measurement.
	warm := max(n/20, 64)
	if err := parallel(warm, workers, func(i int) error { return lifecycle(ctx, conn, fmt.Sprintf("w%d", i)) }); err != nil {
		t.Fatal(err)
	}
	if err := parallel(warm, workers, del("w")); err != nil {
		t.Fatal(err)
	}
	before := settledRSS(t, srv)

	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	t.Logf("after a warm-up of %d sessions: RSS %.1f MiB, Go heap in use %.1f MiB", warm, mib(before), mib(heapInuse(t, srv)))
	// Two rounds: a leak grows with every round; what the first round
	// leaves (allocator fragmentation, maps the runtime does not shrink)
	// is paid once.
	var after [2]int64
	for round := range 2 {
		prefix := fmt.Sprintf("r%d-", round)
		start := time.Now()
		if err := parallel(n, workers, func(i int) error { return lifecycle(ctx, conn, fmt.Sprintf("%s%d", prefix, i)) }); err != nil {
			t.Fatal(err)
		}
		made := time.Since(start)
		peak, peakHeap := settledRSS(t, srv), heapInuse(t, srv)
		start = time.Now()
		if err := parallel(n, workers, del(prefix)); err != nil {
			t.Fatal(err)
		}
		deleted := time.Since(start)
		after[round] = settledRSS(t, srv)
		t.Logf("round %d: %d sessions (handshake and close each) in %v, deleted in %v; RSS %.1f MiB with all live (heap %.1f MiB, %.1f KiB per session), %.1f MiB after deleting them (%+.1f MiB from the start; heap %.1f MiB)",
			round+1, n, made.Round(time.Millisecond), deleted.Round(time.Millisecond), mib(peak), mib(peakHeap), float64(peak-before)/1024/float64(n),
			mib(after[round]), mib(after[round]-before), mib(heapInuse(t, srv)))
		if peak-before < 4*max(after[round]-before, 1<<20) {
			t.Errorf("round %d: RSS with the sessions (%+.1f MiB) is not well above what deleting them left (%+.1f MiB)", round+1, mib(peak-before), mib(after[round]-before))
		}
	}
	// Close to where it started: within 25% of the start or 10 MiB,
	// whichever is larger; and the second round adds less than 4 MiB (a
	// leak of 400 bytes per session would pass it).
	if allowed := max(before/4, 10<<20); after[0]-before > allowed {
		t.Errorf("RSS %.1f MiB after deleting every session, %.1f MiB before: more than %.1f MiB left behind", mib(after[0]), mib(before), mib(allowed))
	}
	if grow := after[1] - after[0]; grow > 4<<20 {
		t.Errorf("the second round left %.1f MiB more than the first: a leak", mib(grow))
	}
	if srv.Panicked() {
		t.Fatal(srv.Logs())
	}
}
