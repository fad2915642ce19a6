package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// result is one measurement.
type result struct {
	ops      int64 // calls, segments or requests in the window
	window   time.Duration
	lat      []time.Duration // per call or message
	errors   int64
	firstErr error
	// serverCPU is the CPU time (user and system) the server process used
	// during the window: less sensitive than the rate to what else runs on
	// the machine.
	serverCPU time.Duration
	// durableWait is the server's mean wait, per call, for its records to
	// be durable (tcpstated only).
	durableWait time.Duration
	// idleCPU is the CPU time the server processes used over a window as
	// long with no load (the replica comparison only): each process's
	// fixed cost (lease renewal, orphan polling, Go runtime), which grows
	// with the process count whatever the calls cost.
	idleCPU time.Duration
	// commits and records are the PostgreSQL store's group-commit
	// transactions and records committed in the window, summed over the
	// replicas (the replica comparison only).
	commits, records float64
}

func (r *result) rate() float64 { return float64(r.ops) / r.window.Seconds() }

// cpuPerOp is the server's CPU time per operation, in µs.
func (r *result) cpuPerOp() float64 {
	if r.ops == 0 {
		return 0
	}
	return float64(r.serverCPU.Microseconds()) / float64(r.ops)
}

// loadCPUPerOp is cpuPerOp less the idle CPU of the same window, in µs.
func (r *result) loadCPUPerOp() float64 {
	if r.ops == 0 {
		return 0
	}
	return float64((r.serverCPU - r.idleCPU).Microseconds()) / float64(r.ops)
}

// pct returns the p-th percentile latency (p in [0, 100]).
func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	i := int(float64(len(r.lat)-1) * p / 100)
	return r.lat[i]
}

// window times a load: calls started in [from, to) count.
type window struct{ start, from, to time.Time }

func newWindow(warmup, d time.Duration) window {
	now := time.Now()
	return window{start: now, from: now.Add(warmup), to: now.Add(warmup + d)}
}

// worker runs one caller until the window ends and merges what it measured.
type collector struct {
	mu sync.Mutex
	r  result
}

func (c *collector) add(ops int64, lat []time.Duration, errs int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.r.ops += ops
	c.r.lat = append(c.r.lat, lat...)
	c.r.errors += errs
	if c.r.firstErr == nil {
		c.r.firstErr = err
	}
}

// run starts n workers, each calling op until the window closes; op
// returns how many operations one call carried.
func run(ctx context.Context, n int, w window, newOp func(i int) (func() (int, error), func())) result {
	c := &collector{}
	var wg sync.WaitGroup
	for i := range n {
		op, done := newOp(i)
		wg.Go(func() {
			if done != nil {
				defer done()
			}
			var ops, errs int64
			var first error
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(w.to) {
					break
				}
				k, err := op()
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					if errs > 100 {
						break
					}
					continue
				}
				if !t0.Before(w.from) {
					ops += int64(k)
					lat = append(lat, time.Since(t0))
				}
			}
			c.add(ops, lat, errs, first)
		})
	}
	wg.Wait()
	c.r.window = w.to.Sub(w.from)
	return c.r
}

// dial opens n client connections to a gRPC address.
func dial(addr string, n int) ([]*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	for range n {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

// setupSessions creates each session with fixed ISNs and a listener.
func setupSessions(ctx context.Context, conn *grpc.ClientConn, names []string) error {
	sc, ec := pb.NewSessionServiceClient(conn), pb.NewEndpointServiceClient(conn)
	for _, name := range names {
		id := strings.TrimPrefix(name, "sessions/")
		if _, err := sc.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: id, Session: &pb.Session{Options: &pb.SessionOptions{
			IsnMode: pb.IsnMode_ISN_MODE_FIXED, FixedIsn: fixedISN,
		}}}); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
		if _, err := ec.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: name,
			Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: listenAddr.String()}}}); err != nil {
			return fmt.Errorf("listening in %s: %w", name, err)
		}
	}
	return nil
}

func sessionNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("sessions/%s-%d", prefix, i)
	}
	return names
}

// unaryLoad: one caller per session, SubmitSegment with raw IP packets.
func unaryLoad(ctx context.Context, conns []*grpc.ClientConn, sessions []string, w window) result {
	return run(ctx, len(sessions), w, func(i int) (func() (int, error), func()) {
		c := pb.NewSegmentServiceClient(conns[i%len(conns)])
		p := newPeer(i)
		req := &pb.SubmitSegmentRequest{Parent: sessions[i]}
		var buf []byte
		return func() (int, error) {
			buf = p.next().packet(buf)
			req.Segment = &pb.SubmitSegmentRequest_IpPacket{IpPacket: buf}
			_, err := c.SubmitSegment(ctx, req)
			return 1, err
		}, nil
	})
}

// message builds ExchangeSegments requests of n packets.
type message struct {
	req  *pb.ExchangeSegmentsRequest
	bufs [][]byte
}

func newMessage(n int) *message {
	return &message{req: &pb.ExchangeSegmentsRequest{RawOnly: rawOnly, IpPackets: make([][]byte, n)}, bufs: make([][]byte, n)}
}

func (m *message) fill(session string, seq uint64, p *peer) *pb.ExchangeSegmentsRequest {
	m.req.Parent, m.req.Sequence = session, seq
	for i := range m.bufs {
		m.bufs[i] = p.next().packet(m.bufs[i])
		m.req.IpPackets[i] = m.bufs[i]
	}
	return m.req
}

// streamLoad: one ExchangeSegments stream per session, perMessage packets
// per message, one message in flight per stream.
func streamLoad(ctx context.Context, conns []*grpc.ClientConn, sessions []string, perMessage int, w window) result {
	return run(ctx, len(sessions), w, func(i int) (func() (int, error), func()) {
		c := pb.NewSegmentServiceClient(conns[i%len(conns)])
		sctx, cancel := context.WithCancel(ctx)
		st, err := c.ExchangeSegments(sctx)
		if err != nil {
			return func() (int, error) { return 0, err }, cancel
		}
		p, m := newPeer(i), newMessage(perMessage)
		var seq uint64
		return func() (int, error) {
			seq++
			if err := st.Send(m.fill(sessions[i], seq, p)); err != nil {
				return 0, err
			}
			r, err := st.Recv()
			if err != nil {
				return 0, err
			}
			if r.Error != "" || int(r.Processed) != perMessage || r.Sequence != seq {
				return 0, fmt.Errorf("exchange: sequence %d, %d of %d processed, %q", r.Sequence, r.Processed, perMessage, r.Error)
			}
			return perMessage, nil
		}, func() { st.CloseSend(); cancel() }
	})
}

// restLoad: one HTTP caller per session, POST .../segments with fields.
func restLoad(ctx context.Context, base string, sessions []string, w window) result {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 2 * len(sessions), MaxIdleConnsPerHost: 2 * len(sessions), IdleConnTimeout: time.Minute,
	}}
	defer client.CloseIdleConnections()
	return run(ctx, len(sessions), w, func(i int) (func() (int, error), func()) {
		url := base + "/v1/" + sessions[i] + "/segments"
		p := newPeer(i)
		var body []byte
		resp := make([]byte, 0, 8192)
		return func() (int, error) {
			body = p.next().json(body)
			req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Content-Type", "application/json")
			r, err := client.Do(req)
			if err != nil {
				return 0, err
			}
			buf := bytes.NewBuffer(resp[:0])
			_, err = io.Copy(buf, r.Body)
			r.Body.Close()
			if err != nil {
				return 0, err
			}
			if r.StatusCode != http.StatusOK {
				return 0, fmt.Errorf("HTTP %d: %.200s", r.StatusCode, buf.Bytes())
			}
			return 1, nil
		}, nil
	})
}
