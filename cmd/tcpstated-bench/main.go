// Command tcpstated-bench is the load generator of `make bench`: it runs
// the real tcpstated server and a bare echo server on free loopback ports
// and prints, as a Markdown table, unary, streaming and REST throughput
// and latency of each, their ratios against the goals, and the memory of
// idle sessions. See package bench.
//
//	tcpstated-bench --server-bin bin/tcpstated [flags]
//	tcpstated-bench echo [flags]    (the echo server; started by the benchmark)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcpstated/tcpstated/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 && args[0] == "echo" {
		return echo(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("tcpstated-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.Config
	fs.StringVar(&cfg.ServerBin, "server-bin", "bin/tcpstated", "the tcpstated binary to measure")
	fs.IntVar(&cfg.Runs, "runs", 3, "whole runs; the report gives the median of each figure")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured time of each load")
	fs.DurationVar(&cfg.Warmup, "warmup", 500*time.Millisecond, "unmeasured time before each measurement")
	fs.IntVar(&cfg.Callers, "callers", 64, "concurrent unary and REST callers (one session each)")
	fs.IntVar(&cfg.Streams, "streams", 8, "concurrent ExchangeSegments streams (one session each)")
	fs.IntVar(&cfg.PerMessage, "per-message", 64, "packets per ExchangeSegments message")
	fs.IntVar(&cfg.IdleSessions, "idle-sessions", 10000, "sessions of the memory figure")
	fs.BoolVar(&cfg.NoMemory, "no-memory", false, "skip the memory figure")
	fs.BoolVar(&cfg.MemoryOnly, "memory-only", false, "measure only the memory figure (with --idle-sessions), none of the loads")
	fs.BoolVar(&cfg.ReplicasOnly, "replicas-only", false, "measure only the PostgreSQL 1 vs 2 vs 3 replicas figure (add --no-memory to skip the memory figure)")
	fs.StringVar(&cfg.ProfileDir, "profile-dir", "", "write a CPU profile of the server during each tcpstated measurement into this directory")
	fs.StringVar(&cfg.Postgres, "postgres", "auto", "auto: also measure the PostgreSQL store (--store=postgres://…) on a PostgreSQL started for the run, when its binaries are installed; off: do not")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated-bench: %v\n", err)
		return 1
	}
	cfg.EchoBin = self
	if !*quiet {
		cfg.Progress = stderr
	}
	loadBefore := loadAvg()
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated-bench: %v\n", err)
		return 1
	}
	host, _ := os.Hostname()
	fmt.Fprintf(stdout, "tcpstated-bench on %s, %s; took %v; load average (1 min) %s before, %s after\n\n",
		host, bench.MachineSummary(), rep.Took.Round(time.Second), loadBefore, loadAvg())
	rep.Markdown(stdout)
	return 0
}

func echo(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("tcpstated-bench echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:0", "gRPC address")
	httpAddr := fs.String("http-addr", "127.0.0.1:0", "gateway dialing the gRPC server on loopback")
	inprocAddr := fs.String("http-inproc-addr", "127.0.0.1:0", "gateway calling the handlers in-process")
	perMessage := fs.Int("per-message", 64, "packets per ExchangeSegments message of the recorded responses")
	debug := fs.Bool("debug-endpoints", false, "serve /debug/pprof/profile on the --http-addr listener (--profile-dir profiles the echo too)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := bench.ServeEcho(ctx, *grpcAddr, *httpAddr, *inprocAddr, *perMessage, *debug, stderr); err != nil {
		fmt.Fprintf(stderr, "tcpstated-bench echo: %v\n", err)
		return 1
	}
	return 0
}

// loadAvg is the 1-minute load average: what else ran on the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
