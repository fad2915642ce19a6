package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// Binaries built once by TestMain.
var (
	serverBin string // cmd/tcpstated
	benchBin  string // cmd/tcpstated-bench
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tcpstated-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "tcpstated")
	benchBin = filepath.Join(dir, "tcpstated-bench")
	for pkg, out := range map[string]string{"../cmd/tcpstated": serverBin, "../cmd/tcpstated-bench": benchBin} {
		if err := goBuild(pkg, out); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building %s: %v\n", pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBuild builds a main package, with -race when the tests have it.
func goBuild(pkg, out string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goCmd, append(args, pkg)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, stderr.String())
	}
	return nil
}

// lockedBuffer collects a process's stderr.
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

// server is one running tcpstated process.
type server struct {
	t        *testing.T
	dir      string
	cmd      *exec.Cmd
	logs     *lockedBuffer
	exited   chan struct{}
	waitErr  error
	grpcAddr string
	httpAddr string
	base     string // http://ADDR

	conn      *grpc.ClientConn
	sessions  pb.SessionServiceClient
	endpoints pb.EndpointServiceClient
	segments  pb.SegmentServiceClient
	logsvc    pb.LogServiceClient
}

var listeningLine = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

// startServer starts the binary on free loopback ports with the data
// directory dir and waits for its "listening" log line.
func startServer(t *testing.T, dir string, flags ...string) *server {
	t.Helper()
	s := &server{t: t, dir: dir, logs: &lockedBuffer{}, exited: make(chan struct{})}
	args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", dir}, flags...)
	s.cmd = exec.Command(serverBin, args...)
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
		if s.conn != nil {
			s.conn.Close()
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(s.logs.String()); m != nil {
			s.grpcAddr, s.httpAddr = m[1], m[2]
			break
		}
		select {
		case <-s.exited:
			t.Fatalf("server exited before listening (%v):\n%s", s.waitErr, s.logs.String())
		case <-deadline:
			t.Fatalf("server did not log its addresses within 60 s:\n%s", s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.base = "http://" + s.httpAddr
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	s.sessions = pb.NewSessionServiceClient(conn)
	s.endpoints = pb.NewEndpointServiceClient(conn)
	s.segments = pb.NewSegmentServiceClient(conn)
	s.logsvc = pb.NewLogServiceClient(conn)
	return s
}

// stop sends SIGTERM and checks the server stopped cleanly (exit 0, the
// "stopped" line, and no data race report).
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Fatalf("server did not stop within 60 s of SIGTERM:\n%s", s.logs.String())
	}
	s.conn.Close()
	logs := s.logs.String()
	if s.waitErr != nil || !strings.Contains(logs, "msg=stopped") || strings.Contains(logs, "DATA RACE") {
		s.t.Fatalf("unclean stop (%v):\n%s", s.waitErr, logs)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.conn.Close()
	if logs := s.logs.String(); strings.Contains(logs, "DATA RACE") {
		s.t.Fatalf("data race in the server:\n%s", logs)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

// do makes one HTTP request; body "" sends none.
func (s *server) do(method, path, body string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// doJSON makes a request that must succeed and returns the decoded body.
func (s *server) doJSON(method, path, body string) map[string]any {
	s.t.Helper()
	code, b := s.do(method, path, body)
	if code != http.StatusOK {
		s.t.Fatalf("%s %s %s: HTTP %d: %s", method, path, body, code, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		s.t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
	return m
}

// jget follows a dotted path ("outputs.segments.0.flags") through decoded
// JSON; nil when a step is missing.
func jget(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// jstr is jget rendered compactly (strings as they are, the rest as JSON).
func jstr(v any, path string) string {
	x := jget(v, path)
	if s, ok := x.(string); ok {
		return s
	}
	b, _ := json.Marshal(x)
	return string(b)
}
