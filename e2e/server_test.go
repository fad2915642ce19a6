package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/testserver"
)

// Binaries built once by TestMain, with -race when the tests have it.
var (
	serverBin string // cmd/tcpstated
	benchBin  string // cmd/tcpstated-bench
)

func TestMain(m *testing.M) {
	for pkg, out := range map[string]*string{"./cmd/tcpstated": &serverBin, "./cmd/tcpstated-bench": &benchBin} {
		bin, err := testserver.Binary(pkg, testserver.Race)
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			testserver.RemoveBinaries()
			os.Exit(1)
		}
		*out = bin
	}
	testserver.Main(m)
}

// server is one running tcpstated process with clients of its APIs.
type server struct {
	*testserver.Server
	t    *testing.T
	base string // http://ADDR

	conn      *grpc.ClientConn
	sessions  pb.SessionServiceClient
	endpoints pb.EndpointServiceClient
	segments  pb.SegmentServiceClient
	logsvc    pb.LogServiceClient
}

// startServer starts the binary on free loopback ports with the data
// directory dir and waits for its "listening" log line.
func startServer(t *testing.T, dir string, flags ...string) *server {
	t.Helper()
	s := &server{t: t, Server: testserver.StartT(t, testserver.Config{Binary: serverBin, DataDir: dir, Args: flags})}
	s.base = "http://" + s.HTTPAddr
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
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
	err := s.Stop(60 * time.Second)
	s.conn.Close()
	logs := s.Logs()
	if err != nil || !strings.Contains(logs, "msg=stopped") || strings.Contains(logs, "DATA RACE") {
		s.t.Fatalf("unclean stop (%v):\n%s", err, logs)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	s.t.Helper()
	s.Kill()
	s.conn.Close()
	if logs := s.Logs(); strings.Contains(logs, "DATA RACE") {
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
