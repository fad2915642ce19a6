package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one run of the tcpstated binary.
type server struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	logs     *logBuffer
	done     chan struct{} // closed when the process has exited
	waitErr  error
}

// logBuffer keeps the server's stderr.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningLine = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)`)

// startServer starts bin serve on free loopback ports with the extra
// arguments and waits until it listens (the "listening" log line gives
// the ports).
func startServer(bin string, args []string, env []string) (*server, error) {
	all := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "text"}, args...)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), env...)
	s := &server{cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			if m := listeningLine.FindStringSubmatch(line); m != nil && !sent {
				found <- [2]string{m[1], m[2]}
				sent = true
			}
		}
		io.Copy(s.logs, stderr)
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	select {
	case a := <-found:
		s.grpcAddr, s.httpAddr = a[0], a[1]
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("the server exited before listening (%v):\n%s", s.waitErr, s.logs.String())
	case <-time.After(60 * time.Second):
		s.kill()
		return nil, fmt.Errorf("the server did not listen within 60 s:\n%s", s.logs.String())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM and waits (SIGKILL after the timeout).
func (s *server) stop(timeout time.Duration) error {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.kill()
		return fmt.Errorf("the server did not stop within %v", timeout)
	}
	if s.waitErr != nil {
		return fmt.Errorf("the server exited with %v", s.waitErr)
	}
	return nil
}

// panicked reports whether the server's log shows a Go panic or fatal error.
func (s *server) panicked() bool {
	l := s.logs.String()
	return strings.Contains(l, "panic:") || strings.Contains(l, "fatal error:") || strings.Contains(l, "goroutine ") && strings.Contains(l, "[running]")
}
