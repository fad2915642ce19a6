// Package testserver builds the real tcpstated binary and runs `tcpstated
// serve` on free loopback ports for end-to-end tests and the crash
// harness: it reads the bound addresses from the "listening" log line,
// keeps everything the process writes, sends it signals and restarts it on
// the same data directory. A server started with StartT is killed when
// its test ends; one started with Start is the caller's to Kill or Stop.
package testserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// T is the part of testing.TB the helper needs.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Config says how to run `tcpstated serve`.
type Config struct {
	Binary  string   // the tcpstated binary (Tcpstated or Binary builds one)
	DataDir string   // --data-dir
	Args    []string // more flags, after the loopback addresses (a later flag wins)
	Env     []string // added to this process's environment
	// Command, when set, replaces the whole command line after Binary
	// (DataDir and Args are then not used): for another server that logs
	// the same "listening" line, such as the benchmark's echo servers.
	Command []string
	// How long to wait for the "listening" line; 0 means 60 s (a -race
	// build on a loaded machine is slow to start).
	StartTimeout time.Duration
}

// Server is one running tcpstated process.
type Server struct {
	GRPCAddr  string // host:port of the gRPC listener
	HTTPAddr  string // host:port of the HTTP (REST, web view) listener
	Listening string // the whole "listening" line, for fields beyond these

	cfg    Config
	t      T // nil when started by Start
	cmd    *exec.Cmd
	out    *output
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// Start runs `tcpstated serve` on 127.0.0.1:0 (both listeners) and waits
// for its "listening" line. The caller must Kill or Stop it.
func Start(cfg Config) (*Server, error) {
	args := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}
	if cfg.DataDir != "" {
		args = append(args, "--data-dir", cfg.DataDir)
	}
	args = append(args, cfg.Args...)
	if cfg.Command != nil {
		args = cfg.Command
	}
	s := &Server{cfg: cfg, cmd: exec.Command(cfg.Binary, args...), exited: make(chan struct{}),
		out: &output{found: make(chan [3]string, 1)}}
	s.cmd.Env = append(os.Environ(), cfg.Env...)
	// One writer for both: exec copies them through one pipe.
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cfg.Binary, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	select {
	case a := <-s.out.found:
		s.GRPCAddr, s.HTTPAddr, s.Listening = a[0], a[1], a[2]
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("tcpstated exited before listening (%v):\n%s", s.err, s.Logs())
	case <-time.After(timeout):
		s.Kill()
		return nil, fmt.Errorf("tcpstated did not log its addresses within %v:\n%s", timeout, s.Logs())
	}
}

// StartT is Start for a test: it fails t if the server does not start and
// kills the server when the test ends (a no-op once it has stopped).
func StartT(t T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s.t = t
	t.Cleanup(s.Kill)
	return s
}

// Restart kills s if it still runs and starts the same binary with the
// same configuration (so the same data directory) on new ports. A server
// from StartT restarts under the same test.
func (s *Server) Restart() (*Server, error) {
	s.Kill()
	if s.t == nil {
		return Start(s.cfg)
	}
	s.t.Helper()
	return StartT(s.t, s.cfg), nil
}

// Pid is the process ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig (syscall.SIGHUP reloads the auth tokens, SIGTERM stops).
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process to be gone; a no-op once it
// has exited.
func (s *Server) Kill() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

// Stop sends SIGTERM and waits up to timeout for the process to exit
// (SIGKILL after it); an error when it had to be killed or did not exit 0.
func (s *Server) Stop(timeout time.Duration) error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.Kill()
		return fmt.Errorf("tcpstated did not stop within %v of SIGTERM", timeout)
	}
	if s.err != nil {
		return fmt.Errorf("tcpstated exited with %v", s.err)
	}
	return nil
}

// Exited is closed when the process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Err waits for the process to exit and returns how (nil for exit 0).
func (s *Server) Err() error {
	<-s.exited
	return s.err
}

// Logs is everything the process wrote to stderr and stdout so far.
func (s *Server) Logs() string { return s.out.String() }

// Panicked reports whether the logs show a Go panic or fatal error.
func (s *Server) Panicked() bool {
	l := s.Logs()
	return strings.Contains(l, "panic:") || strings.Contains(l, "fatal error:") || strings.Contains(l, "goroutine ") && strings.Contains(l, "[running]")
}

// output keeps what the process writes and looks in each whole line for
// the first "listening" line.
type output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	scanned int // bytes of b already looked at
	sent    bool
	found   chan [3]string // gRPC and HTTP addresses and the line, once
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	for !o.sent {
		rest := o.b.Bytes()[o.scanned:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		o.scanned += i + 1
		if g, h, ok := parseListening(rest[:i]); ok {
			o.found <- [3]string{g, h, string(rest[:i])}
			o.sent = true
		}
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

var listeningText = regexp.MustCompile(`\bmsg=listening grpc=(\S+) http=(\S+)`)

// parseListening reads the bound addresses from the server's "listening"
// line, in either --log-format (text or json).
func parseListening(line []byte) (grpcAddr, httpAddr string, ok bool) {
	if m := listeningText.FindSubmatch(line); m != nil {
		return string(m[1]), string(m[2]), true
	}
	var l struct{ Msg, GRPC, HTTP string }
	if json.Unmarshal(line, &l) == nil && l.Msg == "listening" && l.GRPC != "" && l.HTTP != "" {
		return l.GRPC, l.HTTP, true
	}
	return "", "", false
}
