package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/tcpstated/tcpstated/internal/pgtest"
)

// Config says what to run. Zero fields take the defaults of `make bench`.
type Config struct {
	ServerBin string // the tcpstated binary
	EchoBin   string // a binary whose `echo` subcommand runs ServeEcho (cmd/tcpstated-bench)

	Runs         int           // whole runs; figures are the median (default 3)
	Duration     time.Duration // measured time of each load (default 3 s)
	Warmup       time.Duration // unmeasured time before it (default 500 ms)
	Callers      int           // unary and REST callers, one session each (default 64)
	Streams      int           // ExchangeSegments streams, one session each (default 8)
	PerMessage   int           // packets per ExchangeSegments message (default 64)
	IdleSessions int           // sessions of the memory figure (default 10000; 0 with NoMemory)
	NoMemory     bool          // skip the memory figure
	MemoryOnly   bool          // only the memory figure (no loads, no echo server)
	ReplicasOnly bool          // only the PostgreSQL 1 vs 2 vs 3 replicas figure
	// ProfileDir, when set, receives a CPU profile of the server during
	// each measurement, the echo's included (NAME.pprof; read with go
	// tool pprof and the binary that ran).
	ProfileDir string

	// Postgres: "auto" (default) also measures the PostgreSQL store
	// (--store=postgres://…) on a PostgreSQL started for the benchmark
	// when its binaries are installed; "off" does not.
	Postgres string

	Progress io.Writer // progress lines (nil: none)

	pg   *pgtest.Server // started by Run (postgres.go)
	pgDB int            // databases made so far
}

func (c *Config) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Runs, 3)
	def(&c.Callers, 64)
	def(&c.Streams, 8)
	def(&c.PerMessage, 64)
	def(&c.IdleSessions, 10000)
	if c.Duration <= 0 {
		c.Duration = 3 * time.Second
	}
	if c.Warmup <= 0 {
		c.Warmup = 500 * time.Millisecond
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// The measurements of one run.
const (
	echoUnary      = "echo gRPC unary"
	echoStream     = "echo gRPC stream"
	echoRESTLoop   = "echo gateway, dialing gRPC on loopback"
	echoRESTInproc = "echo gateway, handlers in-process"
)

func realName(load, fsync string) string { return "tcpstated " + load + " fsync=" + fsync }

// Report holds every run's measurements.
type Report struct {
	Config  Config
	Runs    []map[string]*result
	Memory  *memResult
	Started time.Time
	Took    time.Duration
}

// Run runs the benchmark. Each run starts the echo server and two
// tcpstated servers (fsync=never and fsync=always) and then measures each
// load on the three back to back, so that the ratios compare measurements
// taken within seconds of each other on this shared machine.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.defaults()
	rep := &Report{Config: cfg, Started: time.Now()}
	tmp, err := os.MkdirTemp("", "tcpstated-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	stopPG, err := cfg.startPostgres()
	if err != nil {
		return nil, err
	}
	defer stopPG()
	for run := 1; run <= cfg.Runs && !cfg.MemoryOnly; run++ {
		res := map[string]*result{}
		rep.Runs = append(rep.Runs, res)
		fmt.Fprintf(cfg.Progress, "run %d of %d\n", run, cfg.Runs)
		f := runOnce
		if cfg.ReplicasOnly {
			f = runReplicas
		}
		if err := f(ctx, &cfg, filepath.Join(tmp, fmt.Sprintf("run%d", run)), res); err != nil {
			return rep, err
		}
	}
	if !cfg.NoMemory {
		p, err := startProcess(ctx, "tcpstated (memory)", cfg.ServerBin, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--data-dir", filepath.Join(tmp, "memory"), "--fsync", "never", "--max-sessions", strconv.Itoa(cfg.IdleSessions+10), "--debug-endpoints")
		if err != nil {
			return rep, err
		}
		fmt.Fprintf(cfg.Progress, "memory: %d idle sessions\n", cfg.IdleSessions)
		m, err := idleMemory(ctx, p, cfg.IdleSessions)
		if serr := p.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return rep, fmt.Errorf("memory: %w", err)
		}
		rep.Memory = &m
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

func (c Config) window() window { return newWindow(c.Warmup, c.Duration) }

// conns is how many client connections carry n callers: one per 16.
func conns(n int) int { return max(1, (n+15)/16) }

// A server under test with its client connections.
type target struct {
	name  string // "echo" or "fsync=…"
	p     *process
	conns []*grpc.ClientConn
}

func runOnce(ctx context.Context, cfg *Config, dir string, res map[string]*result) error {
	var targets []*target
	defer func() {
		for _, t := range targets {
			closeAll(t.conns)
			t.p.Kill()
		}
	}()
	start := func(name, bin string, args ...string) error {
		p, err := startProcess(ctx, name, bin, args...)
		if err != nil {
			return err
		}
		t := &target{name: name, p: p}
		targets = append(targets, t)
		t.conns, err = dial(p.grpcAddr, conns(cfg.Callers))
		return err
	}
	if err := start("echo", cfg.EchoBin, append([]string{"echo", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--http-inproc-addr", "127.0.0.1:0", "--per-message", strconv.Itoa(cfg.PerMessage)}, cfg.debugFlags()...)...); err != nil {
		return err
	}
	unary, stream, rest := sessionNames("u", cfg.Callers), sessionNames("x", cfg.Streams), sessionNames("r", cfg.Callers)
	for _, fsync := range []string{"never", "always"} {
		args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, fsync), "--fsync", fsync}, cfg.debugFlags()...)
		if err := start("fsync="+fsync, cfg.ServerBin, args...); err != nil {
			return err
		}
		if err := setupSessions(ctx, targets[len(targets)-1].conns[0], slices.Concat(unary, stream, rest)); err != nil {
			return err
		}
	}
	for _, fsync := range cfg.pgModes() {
		url, err := cfg.newDatabase()
		if err != nil {
			return err
		}
		args := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "pg-"+fsync), "--fsync", fsync, "--store", url}
		if err := start("pg fsync="+fsync, cfg.ServerBin, args...); err != nil {
			return err
		}
		if err := setupSessions(ctx, targets[len(targets)-1].conns[0], slices.Concat(unary, stream, rest)); err != nil {
			return err
		}
	}
	echo, real := targets[0], targets[1:]
	type load struct {
		name string
		f    func(t *target, http string, w window) result
	}
	loads := []load{
		{"unary", func(t *target, _ string, w window) result { return unaryLoad(ctx, t.conns, unary, w) }},
		{"stream", func(t *target, _ string, w window) result {
			return streamLoad(ctx, t.conns, stream, cfg.PerMessage, w)
		}},
		{"REST", func(t *target, http string, w window) result { return restLoad(ctx, "http://"+http, rest, w) }},
	}
	for _, l := range loads {
		base := []struct{ name, http string }{{echoUnary, ""}}
		switch l.name {
		case "stream":
			base[0].name = echoStream
		case "REST":
			base = []struct{ name, http string }{{echoRESTLoop, echo.p.httpAddr}, {echoRESTInproc, echo.p.httpAddr2}}
		}
		for _, b := range base {
			prof := cfg.profileAll([]*process{echo.p}, cfg.window(), b.name)
			if err := measure(*cfg, res, b.name, echo.p, func(w window) result { return l.f(echo, b.http, w) }); err != nil {
				return err
			}
			if err := <-prof; err != nil {
				return err
			}
		}
		for _, t := range real {
			name := "tcpstated " + l.name + " " + t.name
			prof := cfg.profileAll([]*process{t.p}, cfg.window(), name)
			if err := measure(*cfg, res, name, t.p, func(w window) result { return l.f(t, t.p.httpAddr, w) }); err != nil {
				return fmt.Errorf("%w\nserver log:\n%s", err, tail(t.p.Logs(), 20))
			}
			if err := <-prof; err != nil {
				return err
			}
		}
	}
	for _, t := range targets {
		closeAll(t.conns)
		t.conns = nil
		if err := t.p.stop(); err != nil {
			return err
		}
	}
	targets = nil
	return runReplicas(ctx, cfg, dir, res)
}

// debugFlags are the server flags a CPU profile needs (--profile-dir).
func (c *Config) debugFlags() []string {
	if c.ProfileDir == "" {
		return nil
	}
	return []string{"--debug-endpoints"}
}

// profileAll writes a CPU profile of each of ps over w's measured part
// into the profile directory, named after the figure (and the replica,
// for several), when --profile-dir is set; the channel gives the first
// error once all are written.
func (c *Config) profileAll(ps []*process, w window, name string) <-chan error {
	done := make(chan error, 1)
	if c.ProfileDir == "" {
		done <- nil
		return done
	}
	go func() {
		time.Sleep(time.Until(w.from))
		errs := make(chan error, len(ps))
		for i, p := range ps {
			file := name
			if len(ps) > 1 {
				file = fmt.Sprintf("%s replica %d", name, i+1)
			}
			path := filepath.Join(c.ProfileDir, strings.NewReplacer(" ", "-", "=", "-", "/", "-", ",", "").Replace(file)+".pprof")
			go func() {
				if err := p.profile(w.to.Sub(w.from), path); err != nil {
					errs <- fmt.Errorf("profiling %s: %w", file, err)
					return
				}
				errs <- nil
			}()
		}
		var first error
		for range ps {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		done <- first
	}()
	return done
}

// overWindow reads a sample at the start and at the end of w, while the
// caller runs its load (or none), and sends their difference; failed if
// either read fails.
func overWindow[T any](w window, read func() (T, error), diff func(after, before T) T, failed T) <-chan T {
	ch := make(chan T, 1)
	go func() {
		time.Sleep(time.Until(w.from))
		before, err1 := read()
		time.Sleep(time.Until(w.to))
		after, err2 := read()
		if err1 != nil || err2 != nil {
			ch <- failed
			return
		}
		ch <- diff(after, before)
	}()
	return ch
}

// measure runs one load and samples the CPU time the server process p
// used during its window.
func measure(cfg Config, res map[string]*result, name string, p *process, f func(w window) result) error {
	w := cfg.window()
	type sample struct {
		cpu               time.Duration
		waitSum, waitsNum float64 // tcpstated_log_durable_wait_seconds (tcpstated only)
	}
	read := func() (s sample, err error) {
		if s.cpu, err = p.cpu(); err != nil {
			return s, err
		}
		if p.name != "echo" {
			if s.waitSum, err = p.metric("tcpstated_log_durable_wait_seconds_sum"); err != nil {
				return s, err
			}
			s.waitsNum, err = p.metric("tcpstated_log_durable_wait_seconds_count")
		}
		return s, err
	}
	delta := overWindow(w, read, func(after, before sample) sample {
		return sample{after.cpu - before.cpu, after.waitSum - before.waitSum, after.waitsNum - before.waitsNum}
	}, sample{})
	r := f(w)
	d := <-delta
	r.serverCPU = d.cpu
	if d.waitsNum > 0 {
		r.durableWait = time.Duration(d.waitSum / d.waitsNum * float64(time.Second))
	}
	res[name] = &r
	fmt.Fprintf(cfg.Progress, "  %-50s %10.0f/s  p50 %-9v p99 %-9v server CPU %5.1f µs/op  durable wait %-9v errors %d\n", name, r.rate(),
		r.pct(50).Round(time.Microsecond), r.pct(99).Round(time.Microsecond), r.cpuPerOp(), r.durableWait.Round(time.Microsecond), r.errors)
	if r.errors > 0 {
		return fmt.Errorf("%s: %d calls failed; the first: %v", name, r.errors, r.firstErr)
	}
	if r.ops == 0 {
		return fmt.Errorf("%s: no call completed in the window", name)
	}
	return nil
}

// A figure of the report: a server measurement against its baseline.
type figure struct {
	name     string
	server   string   // measurement name
	baseline []string // the faster of these is the baseline
	unit     string
	goal     float64 // minimum ratio; 0: no goal
}

func (c Config) figures() []figure {
	return []figure{
		{fmt.Sprintf("unary SubmitSegment, %d callers, fsync=never", c.Callers), realName("unary", "never"), []string{echoUnary}, "calls/s", 0.60},
		{fmt.Sprintf("unary SubmitSegment, %d callers, fsync=always", c.Callers), realName("unary", "always"), []string{echoUnary}, "calls/s", 0.40},
		{fmt.Sprintf("ExchangeSegments, %d streams × %d segments/message, fsync=never", c.Streams, c.PerMessage), realName("stream", "never"), []string{echoStream}, "segments/s", 0.70},
		{fmt.Sprintf("ExchangeSegments, %d streams × %d segments/message, fsync=always", c.Streams, c.PerMessage), realName("stream", "always"), []string{echoStream}, "segments/s", 0},
		{fmt.Sprintf("REST POST …/segments, %d callers, fsync=never", c.Callers), realName("REST", "never"), []string{echoRESTLoop, echoRESTInproc}, "requests/s", 0.60},
		{fmt.Sprintf("REST POST …/segments, %d callers, fsync=always", c.Callers), realName("REST", "always"), []string{echoRESTLoop, echoRESTInproc}, "requests/s", 0},
		{fmt.Sprintf("PostgreSQL store: unary SubmitSegment, %d callers, synchronous commit", c.Callers), pgName("unary", "always"), []string{echoUnary}, "calls/s", 0.30},
		{fmt.Sprintf("PostgreSQL store: unary SubmitSegment, %d callers, asynchronous commit (fsync=never)", c.Callers), pgName("unary", "never"), []string{echoUnary}, "calls/s", 0},
		{fmt.Sprintf("PostgreSQL store: ExchangeSegments, %d streams × %d segments/message, synchronous commit", c.Streams, c.PerMessage), pgName("stream", "always"), []string{echoStream}, "segments/s", 0},
		{fmt.Sprintf("PostgreSQL store: ExchangeSegments, %d streams × %d segments/message, asynchronous commit (fsync=never)", c.Streams, c.PerMessage), pgName("stream", "never"), []string{echoStream}, "segments/s", 0},
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

func fmtRate(r float64) string {
	switch {
	case r >= 100:
		return strconv.FormatFloat(r, 'f', 0, 64)
	default:
		return strconv.FormatFloat(r, 'f', 1, 64)
	}
}

func fmtLat(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// Markdown renders the report: per figure the medians over the runs of
// the server's rate and latency, the baseline's, their ratio (the median
// of each run's ratio), the goal and whether it is met.
func (r *Report) Markdown(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "%d runs of %v measured (after %v warm-up) per load; medians over the runs. Latency is per call (per message for streams), p50 / p99. "+
		"Server CPU is the server process's user+system CPU time per call, segment or request.\n\n",
		len(r.Runs), c.Duration, c.Warmup)
	fmt.Fprintln(w, "| figure | tcpstated | p50 / p99 | server CPU | bare echo baseline | p50 / p99 | server CPU | ratio | goal | met |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---|---:|---:|---:|---|")
	for _, f := range c.figures() {
		var srv, base, ratio, scpu, bcpu []float64
		var sp50, sp99, bp50, bp99 []time.Duration
		var baseName string
		for _, run := range r.Runs {
			s := run[f.server]
			var b *result
			for _, n := range f.baseline {
				if x := run[n]; x != nil && (b == nil || x.rate() > b.rate()) {
					b, baseName = x, n
				}
			}
			if s == nil || b == nil {
				continue
			}
			srv, base, ratio = append(srv, s.rate()), append(base, b.rate()), append(ratio, s.rate()/b.rate())
			scpu, bcpu = append(scpu, s.cpuPerOp()), append(bcpu, b.cpuPerOp())
			sp50, sp99 = append(sp50, s.pct(50)), append(sp99, s.pct(99))
			bp50, bp99 = append(bp50, b.pct(50)), append(bp99, b.pct(99))
		}
		if len(srv) == 0 {
			continue
		}
		goal, met := "—", "—"
		if f.goal > 0 {
			goal = fmt.Sprintf("≥ %.0f %%", f.goal*100)
			met = "yes"
			if median(ratio) < f.goal {
				met = "**no**"
			}
		}
		bname := "echo"
		if len(f.baseline) > 1 {
			bname = strings.TrimPrefix(baseName, "echo ")
			bname = "faster: " + bname
		}
		fmt.Fprintf(w, "| %s | %s %s | %s / %s | %.1f µs | %s (%s) | %s / %s | %.1f µs | %.0f %% | %s | %s |\n", f.name,
			fmtRate(median(srv)), f.unit, fmtLat(medianDur(sp50)), fmtLat(medianDur(sp99)), median(scpu),
			fmtRate(median(base)), bname, fmtLat(medianDur(bp50)), fmtLat(medianDur(bp99)), median(bcpu),
			median(ratio)*100, goal, met)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every baseline measured (medians):")
	fmt.Fprintln(w)
	for _, n := range []string{echoUnary, echoStream, echoRESTLoop, echoRESTInproc} {
		var v, cpu []float64
		var p50, p99 []time.Duration
		for _, run := range r.Runs {
			if x := run[n]; x != nil {
				v, p50, p99 = append(v, x.rate()), append(p50, x.pct(50)), append(p99, x.pct(99))
				cpu = append(cpu, x.cpuPerOp())
			}
		}
		if len(v) > 0 {
			fmt.Fprintf(w, "- %s: %s/s, p50 %s, p99 %s, server CPU %.1f µs/op\n", n, fmtRate(median(v)), fmtLat(medianDur(p50)), fmtLat(medianDur(p99)), median(cpu))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Mean wait of a call for its records to be durable (tcpstated_log_durable_wait_seconds), medians:")
	fmt.Fprintln(w)
	for _, load := range []string{"unary", "stream", "REST"} {
		var parts []string
		for _, fsync := range []string{"never", "always"} {
			var v []time.Duration
			for _, run := range r.Runs {
				if x := run[realName(load, fsync)]; x != nil {
					v = append(v, x.durableWait)
				}
			}
			if len(v) > 0 {
				parts = append(parts, fmt.Sprintf("fsync=%s %s", fsync, fmtLat(medianDur(v))))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "- %s: %s\n", load, strings.Join(parts, ", "))
		}
	}
	r.replicasMarkdown(w)
	if m := r.Memory; m != nil {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Memory of %d idle sessions (each with a listener and one ESTABLISHED connection, fsync=never), server process: "+
			"RSS %.1f MiB → %.1f MiB (%.1f KiB per session); Go heap in use %.1f MiB → %.1f MiB (%.1f KiB per session); %d open files, %d of them session logs; created in %v.\n",
			m.sessions, mib(m.rssBefore), mib(m.rssAfter), m.perSessionRSS/1024, m.heapBefore/(1<<20), m.heapAfter/(1<<20), m.perSessionHeap/1024,
			m.fds, m.logFDs, m.took.Round(100*time.Millisecond))
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// MachineSummary describes the machine: CPU model, cores, Go version.
func MachineSummary() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s %s/%s", model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
