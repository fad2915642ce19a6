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
// With perReplica, there are Callers callers per replica (n×Callers in
// all) instead of Callers in all.
func replicaName(n int, perReplica bool) string {
	if perReplica {
		return fmt.Sprintf("tcpstated unary pg replicas=%d callers/replica fixed", n)
	}
	return fmt.Sprintf("tcpstated unary pg replicas=%d", n)
}

// replicaCallers is how many callers the measurement of n replicas has:
// callers in all, or callers per replica.
func replicaCallers(callers, n int, perReplica bool) int {
	if perReplica {
		return callers * n
	}
	return callers
}

// replicaCounts are the replica counts compared.
var replicaCounts = []int{1, 2, 3}

// measureReplicas runs the unary load, synchronous commit, against n
// replicas on one fresh database: caller i's session is created on (and
// so owned by) replica i mod n, and the caller talks to that replica. On
// 2 cores the rate cannot grow with n; what must not grow is the server
// CPU per call, summed over the replicas.
func measureReplicas(ctx context.Context, cfg *Config, dir string, n int, perReplica bool, res map[string]*result) error {
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
		args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--data-dir", filepath.Join(dir, fmt.Sprintf("replicas%d-%d", n, i)), "--fsync", "always", "--store", url}, cfg.debugFlags()...)
		p, err := startProcess(ctx, fmt.Sprintf("replica %d of %d", i+1, n), cfg.ServerBin, args...)
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
	names := sessionNames(fmt.Sprintf("k%d", n), replicaCallers(cfg.Callers, n, perReplica))
	for i, name := range names {
		if err := setupSessions(ctx, conns[i%n], []string{name}); err != nil {
			return err
		}
	}
	// Each replica's CPU and store counters, read before and after a
	// window.
	type sample struct{ cpu, commits, records []float64 }
	read := func() (sample, error) {
		var s sample
		for _, p := range ps {
			c, err := p.cpu()
			if err != nil {
				return s, err
			}
			m, err := p.metric("tcpstated_pg_commits_total")
			if err != nil {
				return s, err
			}
			rec, err := p.metric("tcpstated_pg_records_total")
			if err != nil {
				return s, err
			}
			s.cpu, s.commits, s.records = append(s.cpu, c.Seconds()), append(s.commits, m), append(s.records, rec)
		}
		return s, nil
	}
	sub := func(a, b []float64) []float64 {
		d := make([]float64, len(a))
		for i := range a {
			d[i] = a[i] - b[i]
		}
		return d
	}
	sum := func(v []float64) (t float64) {
		for _, x := range v {
			t += x
		}
		return t
	}
	diff := func(after, before sample) sample {
		return sample{sub(after.cpu, before.cpu), sub(after.commits, before.commits), sub(after.records, before.records)}
	}
	failed := sample{make([]float64, n), make([]float64, n), make([]float64, n)}
	// sampled reads the counters over window w while the caller's load
	// (or none) runs.
	sampled := func(w window) <-chan sample { return overWindow(w, read, diff, failed) }
	// First a window as long with no load: the replicas' fixed cost.
	iw := cfg.window()
	idle := <-sampled(iw)
	time.Sleep(time.Until(iw.to))
	w := cfg.window()
	busy := sampled(w)
	profiled := cfg.profileAll(ps, w, replicaName(n, perReplica))
	r := unaryLoad(ctx, conns, names, w)
	d := <-busy
	if err := <-profiled; err != nil {
		return err
	}
	r.serverCPU = time.Duration(sum(d.cpu) * float64(time.Second))
	r.idleCPU = time.Duration(sum(idle.cpu) * float64(time.Second))
	r.commits, r.records = sum(d.commits), sum(d.records)
	name := replicaName(n, perReplica)
	res[name] = &r
	fmt.Fprintf(cfg.Progress, "  %-50s %10.0f/s  p50 %-9v p99 %-9v server CPU %5.1f µs/op (all replicas), %5.1f less idle  errors %d\n", name, r.rate(),
		r.pct(50).Round(time.Microsecond), r.pct(99).Round(time.Microsecond), r.cpuPerOp(), r.loadCPUPerOp(), r.errors)
	for i := range n {
		per := 0.0
		if d.commits[i] > 0 {
			per = d.records[i] / d.commits[i]
		}
		fmt.Fprintf(cfg.Progress, "    replica %d: CPU %v busy, %v idle; %.0f commits, %.0f records (%.1f per commit)\n", i+1,
			time.Duration(d.cpu[i]*float64(time.Second)).Round(time.Millisecond), time.Duration(idle.cpu[i]*float64(time.Second)).Round(time.Millisecond), d.commits[i], d.records[i], per)
	}
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

// runReplicas measures the replica comparison (when PostgreSQL runs).
func runReplicas(ctx context.Context, cfg *Config, dir string, res map[string]*result) error {
	if cfg.pg == nil {
		return nil
	}
	// Fixed total callers, then fixed callers per replica: the server's
	// CPU per call falls with the concurrent calls each process has
	// (more records per group commit, more responses per write), so
	// splitting a fixed load over more replicas raises it whatever the
	// replica count itself costs (issue 16, docs/SCALE.md).
	for _, per := range []bool{false, true} {
		for _, n := range replicaCounts {
			if err := measureReplicas(ctx, cfg, dir, n, per, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// replicasMarkdown renders the replica comparison, if it was measured.
func (r *Report) replicasMarkdown(w io.Writer) {
	var lines []string
	for _, per := range []bool{false, true} {
		for _, n := range replicaCounts {
			var rate, cpu, load, perCommit []float64
			var p50 []time.Duration
			for _, run := range r.Runs {
				if x := run[replicaName(n, per)]; x != nil {
					rate, cpu, p50 = append(rate, x.rate()), append(cpu, x.cpuPerOp()), append(p50, x.pct(50))
					load = append(load, x.loadCPUPerOp())
					if x.commits > 0 {
						perCommit = append(perCommit, x.records/x.commits)
					}
				}
			}
			if len(rate) > 0 {
				lines = append(lines, fmt.Sprintf("| %d | %d | %s calls/s | %s | %.1f µs | %.1f µs | %.1f |", n, replicaCallers(r.Config.Callers, n, per), fmtRate(median(rate)), fmtLat(medianDur(p50)), median(cpu), median(load), median(perCommit)))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "PostgreSQL store, 1 vs 2 vs 3 replicas on one database: unary SubmitSegment, synchronous commit, each caller on the replica that owns its session, first with the callers split over the replicas, then with as many per replica; server CPU summed over the replicas (PostgreSQL's own not counted), as measured and less the replicas' idle CPU over a window as long with no load just before; records per group commit; medians:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| replicas | callers | rate | p50 | server CPU per call | less idle | records per commit |")
	fmt.Fprintln(w, "|---:|---:|---:|---|---:|---:|---:|")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
