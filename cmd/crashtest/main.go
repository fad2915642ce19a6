// Command crashtest checks that tcpstated loses nothing it acknowledged
// when it is killed.
//
// N times it drives concurrent clients over many sessions of a tcpstated
// server (--fsync always), records every input whose RPC returned success,
// kills the server with SIGKILL at a random moment, restarts it on the
// same data directory and checks that every acknowledged input is in its
// session's log (ListRecords), in order; that every session whose creation
// was acknowledged is restored, and every one whose deletion was
// acknowledged is gone; that restoring found no difference; and that every
// session re-runs identically (VerifySession). It prints the counts and
// exits 1 if anything was lost or differs.
//
//	go run ./cmd/crashtest -n 100              # builds ./cmd/tcpstated first
//	go run ./cmd/crashtest -n 20 -seed 42      # reproduce a run's kill times and payloads
//	go run ./cmd/crashtest -bin ./tcpstated    # use a built binary
//
// The seed fixes the kill moments and every payload; the interleaving of
// the concurrent clients is the scheduler's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

func main() {
	var cfg Config
	flag.IntVar(&cfg.N, "n", 100, "crashes")
	seed := flag.Uint64("seed", 0, "seed (0: from the clock; printed)")
	flag.StringVar(&cfg.Binary, "bin", "", "tcpstated binary (empty: go build ./cmd/tcpstated into a temporary directory)")
	flag.StringVar(&cfg.DataDir, "dir", "", "data directory (empty: a temporary one, removed at the end)")
	flag.IntVar(&cfg.Workers, "clients", 8, "concurrent clients")
	flag.IntVar(&cfg.SessionsPerWorker, "sessions", 4, "live sessions per client (older ones are deleted)")
	flag.DurationVar(&cfg.MinRun, "min-run", 200*time.Millisecond, "shortest time between a start and the kill")
	flag.DurationVar(&cfg.MaxRun, "max-run", 1200*time.Millisecond, "longest time between a start and the kill")
	replicas := flag.Int("replicas", 0, "run N replicas on one PostgreSQL (replicas.go) instead of one server on a data directory")
	storeURL := flag.String("store", "", "with -replicas: the database (empty: a PostgreSQL started in a temporary directory)")
	leaseTTL := flag.Duration("lease-ttl", 3*time.Second, "with -replicas: the replicas' --lease-ttl")
	dbDown := flag.Duration("db-down", 500*time.Millisecond, "with -replicas: how long PostgreSQL stays down when it is crashed (longer than -lease-ttl lets every lease lapse)")
	flag.Parse()
	cfg.Seed = *seed
	if *seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	cfg.Out = os.Stdout
	if cfg.Binary == "" {
		bin, cleanup, err := buildServer()
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			os.Exit(2)
		}
		defer cleanup()
		cfg.Binary = bin
	}
	if *replicas > 0 {
		res, err := RunReplicas(context.Background(), ReplicaConfig{Config: cfg, Replicas: *replicas, StoreURL: *storeURL, LeaseTTL: *leaseTTL, DBDown: *dbDown})
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			os.Exit(1)
		}
		for _, f := range res.Failures {
			fmt.Fprintln(os.Stderr, "FAIL:", f)
		}
		if len(res.Failures) > 0 || res.Lost > 0 || res.Duplicated > 0 {
			os.Exit(1)
		}
		return
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
	for _, f := range res.Failures {
		fmt.Fprintln(os.Stderr, "FAIL:", f)
	}
	if len(res.Failures) > 0 || res.Lost > 0 {
		os.Exit(1)
	}
}

// buildServer builds ./cmd/tcpstated into a temporary directory.
func buildServer() (string, func(), error) {
	dir, err := os.MkdirTemp("", "crashtest-bin-")
	if err != nil {
		return "", nil, err
	}
	bin, err := testserver.Build(dir, "./cmd/tcpstated", false)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}
