package main

import (
	"context"
	"fmt"
	"github.com/tcpstated/tcpstated/internal/testserver"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/pgtest"
)

// The crash harness against several replicas on one PostgreSQL (issue 16):
// clients spread over all replicas; N times a random replica is SIGKILLed
// and restarted at the same address; every fifth event instead SIGSTOPs
// one past its lease and resumes it (it must be fenced); PostgreSQL itself
// is crashed (pg_ctl -m immediate) and restarted once. Clients never retry
// a call that failed (it may have been applied); they move on. At the end
// all replicas but one stop gracefully, the last serves every session, and
// the usual check runs: every acknowledged input is in its log in order
// (lost must be 0), no input is in a log twice (duplicated must be 0), every
// session re-runs identically.

// ReplicaConfig says how to run the replica harness.
type ReplicaConfig struct {
	Config
	Replicas int    // replicas (default 3)
	StoreURL string // an existing database (empty: start a PostgreSQL in a temporary directory)
	LeaseTTL time.Duration
	DBDown   time.Duration // how long PostgreSQL stays down when crashed (default 500 ms)
}

// ReplicaResult adds what only a replica run measures.
type ReplicaResult struct {
	Result
	Kills, Pauses, DBRestarts int
	Fenced                    float64 // appends refused by fencing, summed over replicas
	Takeovers                 float64
	Forwards                  float64
	Duplicated                int
	// Interrupted, Resumed: sessions a call of which failed after an event,
	// and those of them served again before the next event.
	Interrupted, Resumed int
	LongestGap           time.Duration // longest time a session was unavailable to its client
	LongestGapSession    string
}

func (r *ReplicaResult) summary() string {
	return fmt.Sprintf("replicas: kills %d, pauses %d, database restarts %d; acknowledged inputs %d, checked %d, lost %d, duplicated %d; "+
		"sessions interrupted %d, served again %d, longest unavailable %v (%s); fenced appends %v, takeovers %v, forwards %v; re-runs identical %d, failures %d",
		r.Kills, r.Pauses, r.DBRestarts, r.Acknowledged, r.Checked, r.Lost, r.Duplicated,
		r.Interrupted, r.Resumed, r.LongestGap.Round(time.Millisecond), r.LongestGapSession, r.Fenced, r.Takeovers, r.Forwards, r.Verified, len(r.Failures))
}

// gaps tracks, per session, since when its client has seen only failures.
type gaps struct {
	mu          sync.Mutex
	off         bool // the final check's calls are not the clients
	down        map[string]time.Time
	interrupted map[string]bool
	resumed     map[string]bool
	longest     time.Duration
	longestOf   string
	window      time.Duration // longest gap that ended since the last settle
}

func newGaps() *gaps {
	return &gaps{down: map[string]time.Time{}, interrupted: map[string]bool{}, resumed: map[string]bool{}}
}

// sessionOf reads the session from a request's name or parent field.
func sessionOf(m any) string {
	pm, ok := m.(proto.Message)
	if !ok {
		return ""
	}
	r := pm.ProtoReflect()
	for _, f := range []protoreflect.Name{"name", "parent"} {
		if fd := r.Descriptor().Fields().ByName(f); fd != nil && fd.Kind() == protoreflect.StringKind {
			rest, _ := strings.CutPrefix(r.Get(fd).String(), "sessions/")
			id, _, _ := strings.Cut(rest, "/")
			return id
		}
	}
	return ""
}

// interceptor gives every call a deadline (a call forwarded to a paused
// replica would wait) and notes each session's failures and recoveries.
func (g *gaps) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	sent := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	id := sessionOf(req)
	if id == "" {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.off {
		return err
	}
	switch c := status.Code(err); {
	case c == codes.Unavailable || c == codes.DeadlineExceeded:
		if _, ok := g.down[id]; !ok {
			// From when the refused call was sent: one that hung until
			// its deadline (a paused owner) was unavailable all along.
			g.down[id] = sent
			g.interrupted[id] = true
		}
	case err == nil || c != codes.Canceled:
		if t, ok := g.down[id]; ok {
			d := time.Since(t)
			if d > g.longest {
				g.longest, g.longestOf = d, id
			}
			g.window = max(g.window, d)
			delete(g.down, id)
			g.resumed[id] = true
		}
	}
	return err
}

// settle counts the event's interrupted and resumed sessions, returns the
// longest gap that ended during it, and starts a new event.
func (g *gaps) settle(r *ReplicaResult) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.window
	g.window = 0
	r.Interrupted += len(g.interrupted)
	r.Resumed += len(g.resumed)
	r.LongestGap, r.LongestGapSession = g.longest, g.longestOf
	g.interrupted, g.resumed = map[string]bool{}, map[string]bool{}
	for id := range g.down {
		g.interrupted[id] = true // still down: counted again if it comes back
	}
	return w
}

type replicaSet struct {
	cfg   ReplicaConfig
	url   string
	addrs []string // fixed gRPC addresses, so a restarted replica has its old id
	srvs  []*testserver.Server
	dirs  []string
}

func (rs *replicaSet) start(i int) error {
	args := []string{"--grpc-addr", rs.addrs[i], "--store", rs.url, "--data-dir", rs.dirs[i], "--fsync", "always",
		"--shutdown-timeout", "5s", "--lease-ttl", rs.cfg.LeaseTTL.String(), "--lease-renew", (rs.cfg.LeaseTTL / 3).String()}
	srv, err := testserver.Start(testserver.Config{Binary: rs.cfg.Binary, Args: args})
	if err != nil {
		return fmt.Errorf("replica %d: %w", i, err)
	}
	rs.srvs[i] = srv
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// metric sums a counter over a replica's /metrics.
func metric(srv *testserver.Server, name string) float64 {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + srv.HTTPAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b := string(body)
	var sum float64
	for _, m := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(?:\{[^}]*\})? (\S+)$`).FindAllStringSubmatch(b, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v
	}
	return sum
}

// RunReplicas runs the replica harness.
func RunReplicas(ctx context.Context, cfg ReplicaConfig) (*ReplicaResult, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 3
	}
	if cfg.DBDown <= 0 {
		cfg.DBDown = 500 * time.Millisecond
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 3 * time.Second
	}
	cfg.Config = cfg.withDefaults(6, 500*time.Millisecond, 2*time.Second)
	res := &ReplicaResult{}
	res.InFlightErrors = map[codes.Code]int{}
	rs := &replicaSet{cfg: cfg, url: cfg.StoreURL, srvs: make([]*testserver.Server, cfg.Replicas)}
	var pg *pgtest.Server
	if rs.url == "" {
		var err error
		if pg, err = pgtest.New(); err != nil {
			return res, err
		}
		defer pg.Remove()
		if err := pg.CreateDB("crashtest"); err != nil {
			return res, err
		}
		rs.url = pg.URL("crashtest")
	}
	for i := range cfg.Replicas {
		a, err := freeAddr()
		if err != nil {
			return res, err
		}
		d, err := os.MkdirTemp("", "crashtest-replica-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		rs.addrs, rs.dirs = append(rs.addrs, a), append(rs.dirs, d)
		if err := rs.start(i); err != nil {
			return res, err
		}
	}
	defer func() {
		for _, s := range rs.srvs {
			if s != nil {
				s.Stop(30 * time.Second)
			}
		}
	}()
	g := newGaps()
	conns := make([]*grpc.ClientConn, cfg.Replicas)
	for i, a := range rs.addrs {
		c, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(g.interceptor))
		if err != nil {
			return res, err
		}
		defer c.Close()
		conns[i] = c
	}
	h := &harness{
		cfg:     cfg.Config,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x7265706c)),
		all:     map[string]*sessState{},
		live:    make([][]*sessState, cfg.Workers),
		counter: make([]int, cfg.Workers),
		conns:   conns,
		conn:    conns[0],
	}
	h.res.InFlightErrors = res.InFlightErrors
	fmt.Fprintf(cfg.Out, "crashtest: %d replicas on %s, seed %d, %d events, %d clients, lease %v (reproduce with -replicas %d -seed %d)\n",
		cfg.Replicas, redact(rs.url), cfg.Seed, cfg.N, cfg.Workers, cfg.LeaseTTL, cfg.Replicas, cfg.Seed)

	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	for w := range cfg.Workers {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
		wg.Go(func() { h.worker(wctx, w, rng) })
	}
	dbRestartAt := cfg.N / 2
	for i := 0; i < cfg.N && ctx.Err() == nil; i++ {
		time.Sleep(cfg.MinRun + time.Duration(h.rng.Int64N(int64(cfg.MaxRun-cfg.MinRun))))
		victim := h.rng.IntN(cfg.Replicas)
		srv := rs.srvs[victim]
		var what string
		switch {
		case i == dbRestartAt && pg != nil:
			what = fmt.Sprintf("PostgreSQL crashed (pg_ctl -m immediate), down %v, restarted", cfg.DBDown)
			if err := pg.Crash(); err != nil {
				return res, err
			}
			time.Sleep(cfg.DBDown)
			started := time.Now()
			if err := pg.Restart(); err != nil {
				return res, err
			}
			// The restart (crash recovery included) is part of the outage;
			// what follows it is the replicas' own recovery.
			what += fmt.Sprintf(" (restart took %v)", time.Since(started).Round(time.Millisecond))
			res.DBRestarts++
		case i%5 == 2:
			what = fmt.Sprintf("replica %d paused (SIGSTOP) for %v, resumed", victim, cfg.LeaseTTL+time.Second)
			srv.Signal(syscall.SIGSTOP)
			time.Sleep(cfg.LeaseTTL + time.Second)
			srv.Signal(syscall.SIGCONT)
			res.Pauses++
		default:
			what = fmt.Sprintf("replica %d killed (SIGKILL) and restarted", victim)
			res.Fenced += metric(srv, "tcpstated_replica_fenced_appends_total")
			res.Takeovers += metric(srv, "tcpstated_replica_takeovers_total")
			res.Forwards += metric(srv, "tcpstated_replica_forwards_total")
			srv.Kill()
			if srv.Panicked() {
				res.fail("event %d: replica %d panicked:\n%s", i, victim, srv.Logs())
			}
			if err := rs.start(victim); err != nil {
				return res, err
			}
			res.Kills++
		}
		// Give the sessions the lease and a takeover round to come back
		// before the next event is counted.
		time.Sleep(cfg.LeaseTTL + 2*time.Second)
		before, beforeR := res.Interrupted, res.Resumed
		gap := g.settle(res)
		h.mu.Lock()
		acked := h.res.Acknowledged
		h.mu.Unlock()
		fmt.Fprintf(cfg.Out, "event %2d: %s; sessions interrupted %d, served again %d, longest unavailable %v; acknowledged so far %d\n",
			i+1, what, res.Interrupted-before, res.Resumed-beforeR, gap.Round(time.Millisecond), acked)
	}
	stopWorkers()
	wg.Wait()
	g.settle(res)
	g.mu.Lock()
	g.off = true
	g.mu.Unlock()

	// Hand every session to replica 0 and check there.
	for i := 1; i < cfg.Replicas; i++ {
		res.Fenced += metric(rs.srvs[i], "tcpstated_replica_fenced_appends_total")
		res.Takeovers += metric(rs.srvs[i], "tcpstated_replica_takeovers_total")
		res.Forwards += metric(rs.srvs[i], "tcpstated_replica_forwards_total")
		if err := rs.srvs[i].Stop(30 * time.Second); err != nil {
			res.fail("replica %d: graceful stop: %v", i, err)
		}
		rs.srvs[i] = nil
	}
	sc := pb.NewSessionServiceClient(conns[0])
	for id := range h.all {
		// Takes it over on demand; UNAVAILABLE while another replica's
		// lease or a takeover is still in progress.
		for try := 0; try < 40; try++ {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := sc.GetSession(c, &pb.GetSessionRequest{Name: "sessions/" + id})
			cancel()
			if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	h.srv = rs.srvs[0]
	h.check(cfg.N)
	res.Fenced += metric(rs.srvs[0], "tcpstated_replica_fenced_appends_total")
	res.Takeovers += metric(rs.srvs[0], "tcpstated_replica_takeovers_total")
	res.Forwards += metric(rs.srvs[0], "tcpstated_replica_forwards_total")
	res.Duplicated = h.duplicates(ctx)
	r := h.res
	r.InFlightErrors = res.InFlightErrors
	res.Result = r
	fmt.Fprintf(cfg.Out, "crashtest: %s\n", res.summary())
	codes := make([]string, 0, len(res.InFlightErrors))
	for code, n := range res.InFlightErrors {
		codes = append(codes, fmt.Sprintf("%v ×%d", code, n))
	}
	sort.Strings(codes)
	if len(codes) > 0 {
		fmt.Fprintf(cfg.Out, "crashtest: refused while running (not acknowledged, not checked): %s\n", strings.Join(codes, ", "))
	}
	return res, nil
}

// duplicates counts inputs that appear more than once in a session's log:
// every input the clients send is unique (its port, sequence numbers and a
// random payload), so a repeat means one call was applied twice.
func (h *harness) duplicates(ctx context.Context) int {
	lc := pb.NewLogServiceClient(h.conn)
	n := 0
	for id, ss := range h.all {
		if ss.deleted {
			continue
		}
		seen := map[string]bool{}
		tok := ""
		for {
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			r, err := lc.ListRecords(c, &pb.ListRecordsRequest{Parent: "sessions/" + id, PageSize: 1000, PageToken: tok})
			cancel()
			if err != nil {
				break
			}
			for _, rec := range r.Records {
				pkt := rec.GetInput().GetSegment().GetIpPacket()
				if len(pkt) == 0 {
					continue
				}
				if seen[string(pkt)] {
					n++
					h.res.fail("session %s: the input at record %d is in the log twice", id, rec.Index)
				}
				seen[string(pkt)] = true
			}
			if tok = r.NextPageToken; tok == "" {
				break
			}
		}
	}
	return n
}

func redact(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		if j := strings.Index(url, "://"); j >= 0 && j < i {
			if k := strings.Index(url[j+3:i], ":"); k >= 0 {
				return url[:j+3+k] + ":***" + url[i:]
			}
		}
	}
	return url
}
