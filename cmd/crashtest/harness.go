package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/testserver"
)

// Config says how to run the harness.
type Config struct {
	Binary  string // the tcpstated binary
	DataDir string // the server's data directory (empty: a temporary one)
	N       int    // crashes
	Seed    uint64
	Workers int // concurrent clients
	// Each client keeps up to this many sessions, deleting its oldest
	// beyond it.
	SessionsPerWorker int
	// The server is killed at a random moment in [MinRun, MaxRun) after
	// the clients start.
	MinRun, MaxRun time.Duration
	Out            io.Writer // progress and the summary
}

// Result counts what the harness did and checked.
type Result struct {
	Crashes        int
	Sessions       int // sessions checked after a crash, summed over crashes
	SessionsMade   int // sessions whose creation was acknowledged
	Deleted        int // sessions whose deletion was acknowledged (checked absent)
	Acknowledged   int // distinct inputs whose RPC returned success
	Checked        int // acknowledged inputs found in the log, summed over crashes
	Lost           int // acknowledged inputs missing from a log
	TornTails      int // logs whose torn tail was cut at restart
	Completed      int // logs that ended in an input without its output
	Verified       int // VerifySession calls that found the re-run identical
	Failures       []string
	InFlightErrors map[codes.Code]int // refused calls while the server ran (not acknowledged)
}

func (r *Result) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Summary is the line the harness prints at the end.
func (r *Result) Summary() string {
	return fmt.Sprintf("crashes: %d, sessions: %d (created %d, deleted %d), acknowledged inputs: %d, acknowledged inputs checked: %d, lost: %d, torn tails cut: %d, completed at restart: %d, re-runs identical: %d, failures: %d",
		r.Crashes, r.Sessions, r.SessionsMade, r.Deleted, r.Acknowledged, r.Checked, r.Lost, r.TornTails, r.Completed, r.Verified, len(r.Failures))
}

// fingerprint identifies one acknowledged input in a log.
type fingerprint struct {
	kind    string // "segment", "send", "listen", "advance"
	bytes   []byte // the IP packet or the data sent
	alias   string // listen: endpoint ID
	clock   time.Duration
	summary string
}

func (f *fingerprint) matches(in *pb.Input) bool {
	switch f.kind {
	case "segment":
		return bytes.Equal(in.GetSegment().GetIpPacket(), f.bytes)
	case "send":
		return in.GetSend() != nil && bytes.Equal(in.GetSend().GetData(), f.bytes)
	case "listen":
		return in.GetListen().GetEndpointId() == f.alias
	case "advance":
		return in.GetAdvanceClock() != nil && in.GetAdvanceClock().GetTo().AsDuration() == f.clock
	}
	return false
}

// sessState is what the clients know of one session.
type sessState struct {
	id       string
	worker   int
	created  bool // CreateSession returned success
	deleted  bool // DeleteSession returned success
	unsure   bool // a create or delete was in flight at a crash
	listened bool
	nextConn int
	acked    []fingerprint
}

type harness struct {
	cfg     Config
	rng     *rand.Rand
	mu      sync.Mutex
	res     Result
	all     map[string]*sessState
	live    [][]*sessState // per worker, oldest first
	counter []int          // per worker, sessions made
	srv     *testserver.Server
	conn    *grpc.ClientConn
	// With replicas (replicas.go): client w talks to conns[w%len], and a
	// call refused as UNAVAILABLE or cut by its deadline is given up, not
	// retried (it may have been applied), and the client carries on.
	conns []*grpc.ClientConn
}

// Run runs the harness: N times, drive clients, kill the server with
// SIGKILL at a random moment, restart it and check every acknowledged
// input, session and re-run.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults(8, 200*time.Millisecond, 1200*time.Millisecond)
	if cfg.DataDir == "" {
		d, err := os.MkdirTemp("", "crashtest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.DataDir = d
	}
	h := &harness{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x6372617368)),
		all:     map[string]*sessState{},
		live:    make([][]*sessState, cfg.Workers),
		counter: make([]int, cfg.Workers),
	}
	h.res.InFlightErrors = map[codes.Code]int{}
	fmt.Fprintf(cfg.Out, "crashtest: seed %d, %d crashes, %d clients, data in %s (reproduce with -seed %d)\n", cfg.Seed, cfg.N, cfg.Workers, cfg.DataDir, cfg.Seed)
	if err := h.start(); err != nil {
		return &h.res, err
	}
	defer func() {
		if h.srv != nil {
			h.conn.Close()
			h.srv.Stop(30 * time.Second)
		}
	}()
	for i := 0; i < cfg.N; i++ {
		if err := ctx.Err(); err != nil {
			return &h.res, err
		}
		run := cfg.MinRun + time.Duration(h.rng.Int64N(int64(cfg.MaxRun-cfg.MinRun)))
		before := h.res.Acknowledged
		h.drive(i, run)
		h.conn.Close()
		if h.srv.Panicked() {
			h.res.fail("crash %d: the server panicked before it was killed:\n%s", i, h.srv.Logs())
		}
		if err := h.start(); err != nil {
			return &h.res, fmt.Errorf("crash %d: restart: %w", i, err)
		}
		h.res.Crashes++
		checked := h.res.Checked
		h.check(i)
		fmt.Fprintf(cfg.Out, "crash %2d: killed after %v, %d inputs acknowledged in the run, %d checked after restart, lost so far %d\n",
			i+1, run.Round(time.Millisecond), h.res.Acknowledged-before, h.res.Checked-checked, h.res.Lost)
		if len(h.res.Failures) > 0 {
			break
		}
	}
	fmt.Fprintf(cfg.Out, "crashtest: %s\n", h.res.Summary())
	for code, n := range h.res.InFlightErrors {
		fmt.Fprintf(cfg.Out, "crashtest: refused while running (not acknowledged, not checked): %v ×%d\n", code, n)
	}
	return &h.res, nil
}

// withDefaults fills the zero fields of cfg: workers clients, runs
// between minRun and maxRun.
func (cfg Config) withDefaults(workers int, minRun, maxRun time.Duration) Config {
	if cfg.Workers <= 0 {
		cfg.Workers = workers
	}
	if cfg.SessionsPerWorker <= 0 {
		cfg.SessionsPerWorker = 4
	}
	if cfg.MaxRun <= cfg.MinRun {
		cfg.MinRun, cfg.MaxRun = minRun, maxRun
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	return cfg
}

func (h *harness) start() error {
	srv, err := testserver.Start(testserver.Config{Binary: h.cfg.Binary, DataDir: h.cfg.DataDir,
		Args: []string{"--fsync", "always", "--shutdown-timeout", "5s"}})
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Kill()
		return err
	}
	h.srv, h.conn = srv, conn
	return nil
}

// drive runs the clients for d, then kills the server with SIGKILL.
func (h *harness) drive(iter int, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range h.cfg.Workers {
		rng := rand.New(rand.NewPCG(h.cfg.Seed, uint64(iter)<<16|uint64(w)))
		wg.Go(func() { h.worker(ctx, w, rng) })
	}
	time.Sleep(d)
	h.srv.Kill()
	cancel()
	wg.Wait()
}

// errStopped ends a worker: the server is gone. errGaveUp: a replica
// run's call was refused or timed out; the worker moves on.
var (
	errStopped = errors.New("stopped")
	errGaveUp  = errors.New("gave up")
)

// call records a failed call's code and tells the worker whether to stop.
func (h *harness) refused(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errStopped
	}
	code := status.Code(err)
	switch {
	case h.conns != nil && (code == codes.Unavailable || code == codes.DeadlineExceeded):
		return errGaveUp // a replica was killed, paused or is handing over
	case code == codes.Unavailable, code == codes.Canceled:
		return errStopped // the server was killed under the call
	}
	h.mu.Lock()
	h.res.InFlightErrors[code]++
	h.mu.Unlock()
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return fmt.Errorf("unexpected %v: %v", code, err)
	}
	return nil
}

// worker drives its sessions until the server is killed.
func (h *harness) worker(ctx context.Context, w int, rng *rand.Rand) {
	conn := h.conn
	if h.conns != nil {
		conn = h.conns[w%len(h.conns)]
	}
	c := clientsOn(conn)
	// A new session each run; the oldest go beyond the cap.
	if err := h.newSession(ctx, c, w); h.stop(w, err) {
		return
	}
	// A session refused this many times in a row is left for the others.
	const maxRetries = 200
	retries := 0
	for k := 0; ctx.Err() == nil; k++ {
		h.mu.Lock()
		live := h.live[w]
		h.mu.Unlock()
		if len(live) == 0 {
			if err := h.newSession(ctx, c, w); h.stop(w, err) {
				return
			}
			continue
		}
		ss := live[k%len(live)]
		if h.conns != nil { // spread each session's calls over the replicas
			c = clientsOn(h.conns[(w+k+retries)%len(h.conns)])
		}
		err := h.connection(ctx, c, ss, rng)
		if h.stop(w, err) {
			return
		}
		if errors.Is(err, errGaveUp) && retries < maxRetries {
			// Retry the same session (on the next replica), as a real
			// client would: moving on to the worker's other sessions
			// first would count the time spent on them as this one's
			// unavailability.
			retries++
			k--
			continue
		}
		retries = 0
		if rng.IntN(8) == 0 {
			if err := h.newSession(ctx, c, w); h.stop(w, err) {
				return
			}
		}
	}
}

// stop reports whether a worker must stop after err; a call given up in a
// replica run only pauses it.
func (h *harness) stop(w int, err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, errGaveUp) {
		time.Sleep(50 * time.Millisecond)
		return false
	}
	h.workerFailed(w, err)
	return true
}

func (h *harness) workerFailed(w int, err error) {
	if errors.Is(err, errStopped) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.res.fail("client %d: %v", w, err)
}

type clients struct {
	s pb.SessionServiceClient
	e pb.EndpointServiceClient
	g pb.SegmentServiceClient
}

func clientsOn(conn *grpc.ClientConn) clients {
	return clients{s: pb.NewSessionServiceClient(conn), e: pb.NewEndpointServiceClient(conn), g: pb.NewSegmentServiceClient(conn)}
}

// newSession creates a session with a listener, and deletes the worker's
// oldest one beyond the cap.
func (h *harness) newSession(ctx context.Context, c clients, w int) error {
	h.mu.Lock()
	h.counter[w]++
	ss := &sessState{id: fmt.Sprintf("w%d-%d", w, h.counter[w]), worker: w, unsure: true}
	h.all[ss.id] = ss
	h.mu.Unlock()
	opts := &pb.SessionOptions{IsnMode: pb.IsnMode_ISN_MODE_FIXED, FixedIsn: 1000, Msl: durationpb.New(time.Second)}
	if _, err := c.s.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: ss.id, Session: &pb.Session{Options: opts}}); err != nil {
		return h.refused(ctx, err)
	}
	h.mu.Lock()
	ss.created, ss.unsure = true, false
	h.res.SessionsMade++
	h.live[w] = append(h.live[w], ss)
	var old *sessState
	if len(h.live[w]) > h.cfg.SessionsPerWorker {
		old = h.live[w][0]
		h.live[w] = h.live[w][1:]
	}
	h.mu.Unlock()
	if old != nil {
		h.mu.Lock()
		old.unsure = true
		h.mu.Unlock()
		if _, err := c.s.DeleteSession(ctx, &pb.DeleteSessionRequest{Name: "sessions/" + old.id}); err != nil {
			return h.refused(ctx, err)
		}
		h.mu.Lock()
		old.deleted, old.unsure = true, false
		h.res.Deleted++
		h.mu.Unlock()
	}
	return nil
}

var (
	serverAddr = netip.MustParseAddr("10.0.0.1")
	clientAddr = netip.MustParseAddr("10.0.0.2")
)

const serverPort = 80

// ack records an acknowledged input.
func (h *harness) ack(ss *sessState, f fingerprint) {
	h.mu.Lock()
	ss.acked = append(ss.acked, f)
	h.res.Acknowledged++
	h.mu.Unlock()
}

// connection runs one passive connection on a session: the peer's
// handshake, data both ways, a clock step and the close, each input
// recorded once its RPC returns success.
func (h *harness) connection(ctx context.Context, c clients, ss *sessState, rng *rand.Rand) error {
	parent := "sessions/" + ss.id
	if !ss.listened {
		alias := "l"
		_, err := c.e.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: parent, EndpointId: alias,
			Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: "10.0.0.1:80"}}})
		if err != nil {
			if status.Code(err) == codes.AlreadyExists { // the ack was lost in a crash
				ss.listened = true
				return nil
			}
			return h.refused(ctx, err)
		}
		ss.listened = true
		h.ack(ss, fingerprint{kind: "listen", alias: alias, summary: "listen " + alias})
	}
	conn := ss.nextConn
	ss.nextConn++
	port := uint16(20000 + conn%40000)
	submit := func(seq, ack uint32, flags fsm.Flags, payload []byte) error {
		s := fsm.Segment{SrcPort: port, DstPort: serverPort, Seq: fsm.Seq(seq), Ack: fsm.Seq(ack), Flags: flags, Window: 65535, Payload: payload}
		if flags&fsm.FlagSYN != 0 {
			s.Options.MSS, s.Options.HasMSS = 1460, true
		}
		pkt := fsm.AppendPacket(nil, clientAddr, serverAddr, &s)
		if _, err := c.g.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: parent, Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: pkt}}); err != nil {
			return h.refused(ctx, err)
		}
		h.ack(ss, fingerprint{kind: "segment", bytes: pkt, summary: fmt.Sprintf("segment port %d seq %d %v len %d", port, seq, flags, len(payload))})
		return nil
	}
	const irs, iss = 100, 1000
	seq := uint32(irs)
	if err := submit(seq, 0, fsm.FlagSYN, nil); err != nil {
		return err
	}
	seq++
	for i := range 1 + rng.IntN(4) {
		p := fmt.Appendf(nil, "%s/%d/%d:%x", ss.id, conn, i, rng.Uint64())
		if err := submit(seq, iss+1, fsm.FlagACK|fsm.FlagPSH, p); err != nil {
			return err
		}
		seq += uint32(len(p))
	}
	acc, err := c.e.AcceptConnection(ctx, &pb.AcceptConnectionRequest{Name: parent + "/endpoints/l"})
	if err != nil {
		if err := h.refused(ctx, err); err != nil {
			return err
		}
	}
	sent := 0
	if ep := acc.GetEndpoint().GetName(); ep != "" {
		if _, err := c.e.ReceiveData(ctx, &pb.ReceiveDataRequest{Name: ep}); err != nil {
			if err := h.refused(ctx, err); err != nil {
				return err
			}
		}
		data := fmt.Appendf(nil, "reply %s/%d:%x", ss.id, conn, rng.Uint64())
		r, err := c.e.SendData(ctx, &pb.SendDataRequest{Name: ep, Payload: &pb.SendDataRequest_Data{Data: data}})
		if err != nil {
			if err := h.refused(ctx, err); err != nil {
				return err
			}
		} else if r.BytesAccepted > 0 {
			sent = int(r.BytesAccepted)
			h.ack(ss, fingerprint{kind: "send", bytes: data, summary: "send " + string(data)})
		}
	}
	r, err := c.s.AdvanceClock(ctx, &pb.AdvanceClockRequest{Name: parent, Target: &pb.AdvanceClockRequest_By{By: durationpb.New(time.Duration(1+rng.IntN(5)) * time.Millisecond)}})
	if err != nil {
		if err := h.refused(ctx, err); err != nil {
			return err
		}
	} else {
		h.ack(ss, fingerprint{kind: "advance", clock: r.Clock.AsDuration(), summary: "advance to " + r.Clock.AsDuration().String()})
	}
	if rng.IntN(5) == 0 {
		return submit(seq, iss+1+uint32(sent), fsm.FlagRST|fsm.FlagACK, nil)
	}
	if err := submit(seq, iss+1+uint32(sent), fsm.FlagFIN|fsm.FlagACK, nil); err != nil {
		return err
	}
	seq++
	if ep := acc.GetEndpoint().GetName(); ep != "" {
		if _, err := c.e.CloseEndpoint(ctx, &pb.CloseEndpointRequest{Name: ep}); err != nil {
			if err := h.refused(ctx, err); err != nil {
				return err
			}
		}
	}
	return submit(seq, iss+1+uint32(sent)+1, fsm.FlagACK, nil)
}

// check runs after a restart: every session whose creation was
// acknowledged (and deletion not) is there, restored without difference,
// re-runs identically, and its log holds every acknowledged input in
// order; every session whose deletion was acknowledged is gone.
func (h *harness) check(iter int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sc := pb.NewSessionServiceClient(h.conn)
	lc := pb.NewLogServiceClient(h.conn)
	present := map[string]*pb.Session{}
	tok := ""
	for {
		r, err := sc.ListSessions(ctx, &pb.ListSessionsRequest{PageSize: 1000, PageToken: tok})
		if err != nil {
			h.res.fail("crash %d: ListSessions: %v", iter, err)
			return
		}
		for _, s := range r.Sessions {
			present[strings.TrimPrefix(s.Name, "sessions/")] = s
		}
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	ids := make([]string, 0, len(h.all))
	for id := range h.all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for id := range present {
		if h.all[id] == nil {
			h.res.fail("crash %d: session %s is present but was never created", iter, id)
		}
	}
	for _, id := range ids {
		ss := h.all[id]
		s, ok := present[id]
		switch {
		case ss.unsure:
			// A create or delete was cut by the crash: either outcome is
			// right; settle it from what the server has.
			ss.unsure = false
			ss.created, ss.deleted = ok, !ok
			if ok {
				h.adopt(ss)
			} else {
				h.drop(ss)
				delete(h.all, id)
				continue
			}
		case ss.deleted && ok:
			h.res.fail("crash %d: session %s is present although its deletion was acknowledged", iter, id)
			continue
		case ss.deleted:
			delete(h.all, id) // checked absent once; done with it
			continue
		case !ok:
			h.res.fail("crash %d: session %s was acknowledged but is not restored", iter, id)
			continue
		}
		h.res.Sessions++
		if st := s.GetRestore(); st != nil {
			if !st.Identical || st.Unreadable {
				h.res.fail("crash %d: session %s restored with a difference or unreadable: %v", iter, id, st)
			}
			if st.Truncated {
				h.res.TornTails++
			}
		}
		h.checkLog(ctx, lc, iter, ss)
		v, err := lc.VerifySession(ctx, &pb.VerifySessionRequest{Name: "sessions/" + id})
		switch {
		case err != nil:
			h.res.fail("crash %d: VerifySession %s: %v", iter, id, err)
		case !v.Identical:
			h.res.fail("crash %d: session %s re-runs differently: %v", iter, id, v.FirstDifference)
		default:
			h.res.Verified++
		}
	}
	if strings.Contains(h.srv.Logs(), "re-run differs") {
		h.res.fail("crash %d: the server logged a re-run difference:\n%s", iter, h.srv.Logs())
	}
	h.res.Completed += strings.Count(h.srv.Logs(), "ended with an input and no output")
}

// adopt puts a session whose creation turned out to have happened back
// among its worker's live sessions.
func (h *harness) adopt(ss *sessState) {
	for _, x := range h.live[ss.worker] {
		if x == ss {
			return
		}
	}
	h.live[ss.worker] = append(h.live[ss.worker], ss)
}

func (h *harness) drop(ss *sessState) {
	live := h.live[ss.worker][:0]
	for _, x := range h.live[ss.worker] {
		if x != ss {
			live = append(live, x)
		}
	}
	h.live[ss.worker] = live
}

// checkLog reads a session's whole log and finds every acknowledged input
// in it, in order.
func (h *harness) checkLog(ctx context.Context, lc pb.LogServiceClient, iter int, ss *sessState) {
	var inputs []*pb.Input
	tok := ""
	for {
		r, err := lc.ListRecords(ctx, &pb.ListRecordsRequest{Parent: "sessions/" + ss.id, PageSize: 1000, PageToken: tok})
		if err != nil {
			h.res.fail("crash %d: ListRecords %s: %v", iter, ss.id, err)
			return
		}
		for _, rec := range r.Records {
			if in := rec.GetInput(); in != nil {
				inputs = append(inputs, in)
			}
		}
		if tok = r.NextPageToken; tok == "" {
			break
		}
	}
	i := 0
	for k := range ss.acked {
		f := &ss.acked[k]
		for i < len(inputs) && !f.matches(inputs[i]) {
			i++
		}
		if i == len(inputs) {
			h.res.Lost += len(ss.acked) - k
			h.res.fail("crash %d: session %s: acknowledged input %d of %d (%s) is not in the log (%d inputs)", iter, ss.id, k+1, len(ss.acked), f.summary, len(inputs))
			return
		}
		i++
		h.res.Checked++
	}
}
