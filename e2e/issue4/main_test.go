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
	"context"
	"encoding/json"
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

	"github.com/tcpstated/tcpstated/internal/testserver"
)

var (
	repo    string // the repository root
	srvOnce sync.Once
	srv     *server
	srvErr  error
	srvDir  string // the shared server's data directory
)

func TestMain(m *testing.M) {
	// A binary built with -race sleeps a second at exit unless told not to.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	_, file, _, _ := runtime.Caller(0)
	repo = filepath.Join(filepath.Dir(file), "..", "..")
	testserver.Main(stopShared{m})
}

// stopShared runs the tests, then stops the shared server.
type stopShared struct{ m *testing.M }

func (s stopShared) Run() int {
	defer func() {
		if srv != nil {
			srv.stop()
		}
		if srvDir != "" {
			os.RemoveAll(srvDir)
		}
	}()
	return s.m.Run()
}

// binary builds cmd/tcpstated once (with -race when the tests have it, so
// the build reuses the compiled packages) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	return testserver.Tcpstated(t, testserver.Race)
}

// server is a running tcpstated on loopback ports it chose itself, logging
// in JSON.
type server struct{ *testserver.Server }

// shared returns the server all tests of the package use (each in its
// own sessions), starting it on first use.
func shared(t *testing.T) *server {
	t.Helper()
	bin := binary(t)
	srvOnce.Do(func() {
		if srvDir, srvErr = os.MkdirTemp("", "tcpstated-issue4-"); srvErr != nil {
			return
		}
		var s *testserver.Server
		s, srvErr = testserver.Start(testserver.Config{Binary: bin, DataDir: srvDir, Args: []string{"--log-format", "json"}})
		if srvErr == nil {
			srv = &server{s}
		}
	})
	if srvErr != nil {
		t.Fatal(srvErr)
	}
	return srv
}

func (s *server) stop() { s.Stop(30 * time.Second) }

func (s *server) url(path string) string { return "http://" + s.HTTPAddr + path }

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
