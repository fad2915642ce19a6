// Package dutnode tests the Node.js starter agent: npm ci, start it, and
// run scripts against it.
package dutnode

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/script"
)

// need finds a tool on PATH; CI has node and npm, elsewhere the test is
// skipped.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI must have it", tool)
		}
		t.Skipf("%s is not installed (node 18 or later with npm); skipping the Node.js starter agent", tool)
	}
	return p
}

// startAgent installs the starter's packages from package-lock.json (npm
// ci) in a copy of it and starts it on a free port; it returns the
// agent's HOST:PORT.
func startAgent(t *testing.T) string {
	node, npm := need(t, "node"), need(t, "npm")
	dir := t.TempDir()
	for _, f := range []string{"agent.js", "stack.js", "unimplemented.js", "package.json", "package-lock.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	protoDir, err := filepath.Abs(filepath.Join("..", "..", "api", "proto"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "agent.js", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TCPSTATED_PROTO_DIR="+protoDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(` on (127\.0\.0\.1:[0-9]+)$`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not say where it listens within 30 s")
		return ""
	}
}

// TestStarterAgent: against the starter as it comes, every script fails
// at its first call with UNIMPLEMENTED named, and the run goes on to the
// next script; in JUnit too.
func TestStarterAgent(t *testing.T) {
	addr := startAgent(t)
	scripts := []string{
		filepath.Join("..", "..", "testdata", "scripts", "handshake-passive.pkt"),
		filepath.Join("..", "..", "testdata", "scripts", "handshake-active.pkt"),
	}
	var stdout, stderr strings.Builder
	status := script.Main(append([]string{"run", "--target=dut:" + addr}, scripts...), &stdout, &stderr)
	got := stdout.String() + stderr.String()
	if status != 1 || strings.Count(got, ": FAIL") != 2 ||
		strings.Count(got, "the agent failed socket: Unimplemented: socket is not wired to the student's stack yet") != 2 {
		t.Errorf("status %d, want 1 with both scripts failing at socket with Unimplemented:\n%s", status, got)
	}

	stdout.Reset()
	stderr.Reset()
	status = script.Main(append([]string{"run", "--format=junit", "--target=dut:" + addr}, scripts...), &stdout, &stderr)
	if got := stdout.String(); status != 1 || !strings.Contains(got, `tests="2" failures="2"`) || strings.Count(got, `message="line `) != 2 ||
		strings.Count(got, "Unimplemented") < 2 {
		t.Errorf("status %d, want 1 with two failures naming Unimplemented:\n%s%s", status, got, stderr.String())
	}
}
