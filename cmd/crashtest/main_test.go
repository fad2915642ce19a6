package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

// serverBin is the tcpstated binary the tests start, built once (without
// the race detector: the server is under test as users run it; the harness
// itself runs with -race in make test).
var serverBin string

func TestMain(m *testing.M) {
	bin, err := testserver.Binary("./cmd/tcpstated", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	serverBin = bin
	testserver.Main(m)
}

// envInt reads a count from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q is not a count", name, v)
	}
	return n
}

// envSeed reads CRASHTEST_SEED, or picks a seed from the clock.
func envSeed(t *testing.T) uint64 {
	v := os.Getenv("CRASHTEST_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano())
	}
	s, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("CRASHTEST_SEED=%q", v)
	}
	return s
}

// The rule: an RPC that returned success is durable. The server is killed
// with SIGKILL N times (CRASHTEST_N, default 20; `make crashtest` runs
// 100) at random moments under concurrent clients; after each restart
// every acknowledged input is in its session's log, every acknowledged
// session is restored (and every acknowledged deletion stays deleted), and
// every session re-runs identically. CRASHTEST_SEED reproduces a run.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	n := envInt(t, "CRASHTEST_N", 20)
	if testing.Short() {
		n = min(n, 3)
	}
	seed := envSeed(t)
	t.Logf("seed %d (CRASHTEST_SEED=%d reproduces the kill times and payloads)", seed, seed)
	res, err := Run(context.Background(), Config{Binary: serverBin, DataDir: t.TempDir(), N: n, Seed: seed, Out: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	if res.Crashes != n || res.Lost != 0 || res.Checked == 0 || res.Verified == 0 {
		t.Fatalf("%s", res.Summary())
	}
}

// testWriter sends the harness's lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-min(1, len(p))]))
	return len(p), nil
}
