package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/tcpstated/tcpstated/internal/pgtest"
)

// The PostgreSQL store's figures: the same loads against a tcpstated on
// --store=postgres://… (each run on a fresh database of one PostgreSQL
// started for the benchmark), for synchronous commit (fsync=always) and
// asynchronous commit (fsync=never).

func pgName(load, fsync string) string { return "tcpstated " + load + " pg fsync=" + fsync }

// startPostgres starts the benchmark's PostgreSQL unless Postgres is
// "off" or its binaries are missing (then the figures are left out and the
// progress says why).
func (c *Config) startPostgres() (stop func(), err error) {
	stop = func() {}
	if c.Postgres == "off" {
		return stop, nil
	}
	if c.Postgres != "" && c.Postgres != "auto" {
		return stop, fmt.Errorf("--postgres: %q is neither auto nor off", c.Postgres)
	}
	if ok, why := pgtest.Available(); !ok {
		fmt.Fprintf(c.Progress, "PostgreSQL store not measured: %s\n", why)
		return stop, nil
	}
	pg, err := pgtest.New()
	if err != nil {
		return stop, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	c.pg = pg
	return pg.Remove, nil
}

// pgModes are the fsync modes measured on PostgreSQL (none without it).
func (c *Config) pgModes() []string {
	if c.pg == nil {
		return nil
	}
	return []string{"never", "always"}
}

// newDatabase makes a fresh database and returns its URL.
func (c *Config) newDatabase() (string, error) {
	c.pgDB++
	name := fmt.Sprintf("bench%d", c.pgDB)
	if err := c.pg.CreateDB(name); err != nil {
		return "", err
	}
	return c.pg.URL(name), nil
}

// replicaName names the measurement of n replicas on one database.
func replicaName(n int) string { return fmt.Sprintf("tcpstated unary pg replicas=%d", n) }

// replicaCounts are the replica counts compared.
var replicaCounts = []int{1, 2, 3}

// measureReplicas runs the unary load, synchronous commit, against n
// replicas on one fresh database: caller i's session is created on (and
// so owned by) replica i mod n, and the caller talks to that replica. On
// 2 cores the rate cannot grow with n; what must not grow is the server
// CPU per call, summed over the replicas.
func measureReplicas(ctx context.Context, cfg *Config, dir string, n int, res map[string]*result) error {
	url, err := cfg.newDatabase()
	if err != nil {
		return err
	}
	var ps []*process
	var conns []*grpc.ClientConn
	defer func() {
		closeAll(conns)
		for _, p := range ps {
			p.Kill()
		}
	}()
	for i := range n {
		p, err := startProcess(ctx, fmt.Sprintf("replica %d of %d", i+1, n), cfg.ServerBin, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--data-dir", filepath.Join(dir, fmt.Sprintf("replicas%d-%d", n, i)), "--fsync", "always", "--store", url)
		if err != nil {
			return err
		}
		ps = append(ps, p)
		c, err := dial(p.grpcAddr, 1)
		if err != nil {
			return err
		}
		conns = append(conns, c...)
	}
	names := sessionNames(fmt.Sprintf("k%d", n), cfg.Callers)
	for i, name := range names {
		if err := setupSessions(ctx, conns[i%n], []string{name}); err != nil {
			return err
		}
	}
	w := cfg.window()
	cpu := func() (time.Duration, error) {
		var sum time.Duration
		for _, p := range ps {
			c, err := p.cpu()
			if err != nil {
				return 0, err
			}
			sum += c
		}
		return sum, nil
	}
	delta := make(chan time.Duration, 1)
	go func() {
		time.Sleep(time.Until(w.from))
		before, err1 := cpu()
		time.Sleep(time.Until(w.to))
		after, err2 := cpu()
		if err1 != nil || err2 != nil {
			delta <- 0
			return
		}
		delta <- after - before
	}()
	r := unaryLoad(ctx, conns, names, w)
	r.serverCPU = <-delta
	name := replicaName(n)
	res[name] = &r
	fmt.Fprintf(cfg.Progress, "  %-50s %10.0f/s  p50 %-9v p99 %-9v server CPU %5.1f µs/op (all replicas)  errors %d\n", name, r.rate(),
		r.pct(50).Round(time.Microsecond), r.pct(99).Round(time.Microsecond), r.cpuPerOp(), r.errors)
	if r.errors > 0 {
		return fmt.Errorf("%s: %d calls failed; the first: %v", name, r.errors, r.firstErr)
	}
	for _, p := range ps {
		if err := p.stop(); err != nil {
			return err
		}
	}
	ps = nil
	return nil
}

// replicasMarkdown renders the replica comparison, if it was measured.
func (r *Report) replicasMarkdown(w io.Writer) {
	var lines []string
	for _, n := range replicaCounts {
		var rate, cpu []float64
		var p50 []time.Duration
		for _, run := range r.Runs {
			if x := run[replicaName(n)]; x != nil {
				rate, cpu, p50 = append(rate, x.rate()), append(cpu, x.cpuPerOp()), append(p50, x.pct(50))
			}
		}
		if len(rate) > 0 {
			lines = append(lines, fmt.Sprintf("| %d | %s calls/s | %s | %.1f µs |", n, fmtRate(median(rate)), fmtLat(medianDur(p50)), median(cpu)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "PostgreSQL store, 1 vs 2 vs 3 replicas on one database: unary SubmitSegment, %d callers, synchronous commit, each caller on the replica that owns its session; server CPU summed over the replicas (PostgreSQL's own not counted), medians:\n\n", r.Config.Callers)
	fmt.Fprintln(w, "| replicas | rate | p50 | server CPU per call |")
	fmt.Fprintln(w, "|---:|---:|---|---:|")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
