package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs the load generator of `make bench` for a moment with
// a small load, so that it cannot rot: every load on every server must
// complete calls without an error, and the report must have every figure.
func TestBenchSmoke(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(benchBin, "--server-bin", serverBin, "--runs", "1", "--duration", "500ms", "--warmup", "100ms",
		"--callers", "4", "--streams", "2", "--per-message", "8", "--idle-sessions", "50")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tcpstated-bench: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("tcpstated-bench did not finish in 3 minutes; stderr:\n%s", stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"| unary SubmitSegment, 4 callers, fsync=never |",
		"| unary SubmitSegment, 4 callers, fsync=always |",
		"| ExchangeSegments, 2 streams × 8 segments/message, fsync=never |",
		"| REST POST …/segments, 4 callers, fsync=always |",
		"echo gateway, dialing gRPC on loopback:",
		"echo gateway, handlers in-process:",
		"Memory of 50 idle sessions",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report has no %q:\n%s", want, out)
		}
	}
}
