// Package issue4 holds the end-to-end tests of grading and teaching
// (issue 4) against the real tcpstated binary: the pcap export read by
// tshark, the ladder diagram and the web view in headless Chromium, the
// script runner over REST and on the command line, and the Node.js and
// curl examples.
//
// Tools the tests need (tshark, chromium, node, npm, curl) are installed
// by .ci/run. Outside CI a missing tool skips its test with a message;
// with CI=true it fails the test.
package issue4

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildFlags are the flags the binary is built with: -race when the tests
// run with it (race_test.go), so the build reuses the compiled packages.
var buildFlags []string

var (
	binDir  string // where the binary is built
	repo    string // the repository root
	srvOnce sync.Once
	srv     *server
	srvErr  error
)

func TestMain(m *testing.M) {
	// A binary built with -race sleeps a second at exit unless told not to.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := func() int {
		var err error
		binDir, err = os.MkdirTemp("", "tcpstated-issue4-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(binDir)
		_, file, _, _ := runtime.Caller(0)
		repo = filepath.Join(filepath.Dir(file), "..", "..")
		defer func() {
			if srv != nil {
				srv.stop()
			}
		}()
		return m.Run()
	}()
	os.Exit(code)
}

var buildOnce sync.Once
var buildErr error

// binary builds cmd/tcpstated once and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "tcpstated")
	buildOnce.Do(func() {
		cmd := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", bin, "./cmd/tcpstated")...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building tcpstated: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// server is a running tcpstated on loopback ports it chose itself.
type server struct {
	grpc, http string // host:port
	cmd        *exec.Cmd
	done       chan struct{}
	log        *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// shared returns the server all tests of the package use (each in its
// own sessions), starting it on first use.
func shared(t *testing.T) *server {
	t.Helper()
	bin := binary(t)
	srvOnce.Do(func() { srv, srvErr = start(bin, filepath.Join(binDir, "data")) })
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	return srv
}

// start runs `tcpstated serve` on 127.0.0.1:0 (both listeners), with
// flags added, and reads the bound addresses from its "listening" log line.
func start(bin, dataDir string, flags ...string) (*server, error) {
	cmd := exec.Command(bin, append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--data-dir", dataDir, "--log-format", "json"}, flags...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{}), log: &lockedBuffer{}}
	found := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			s.log.Write(append(line, '\n'))
			var l struct{ Msg, GRPC, HTTP string }
			if !sent && json.Unmarshal(line, &l) == nil && l.Msg == "listening" {
				s.grpc, s.http = l.GRPC, l.HTTP
				sent = true
				found <- nil
			}
		}
		if !sent {
			found <- fmt.Errorf("tcpstated exited before listening:\n%s", s.log.String())
		}
		cmd.Wait()
		close(s.done)
	}()
	select {
	case err := <-found:
		if err != nil {
			return nil, err
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("tcpstated did not start listening in 60 s:\n%s", s.log.String())
	}
	return s, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) url(path string) string { return "http://" + s.http + path }

// call makes a REST call and returns the status and body.
func (s *server) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url(path), rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// json makes a REST call that must succeed and decodes its JSON answer.
func (s *server) json(t *testing.T, method, path, body string, into any) {
	t.Helper()
	code, b := s.call(t, method, path, body)
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// need returns the path of a tool, or skips the test without it (fails
// it in CI, where .ci/run installs it).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; .ci/run installs it", tool)
		}
		t.Skipf("%s is not installed (apt-get install %s); skipping", tool, tool)
	}
	return p
}

// artifacts is where a test keeps files worth looking at:
// $TCPSTATED_ARTIFACTS/<test> when set, else the test's temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("TCPSTATED_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}
