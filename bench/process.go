package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A process is a server the benchmark started: the real tcpstated or the
// echo server.
type process struct {
	name      string
	cmd       *exec.Cmd
	logs      *syncBuffer
	exited    chan struct{}
	waitErr   error
	grpcAddr  string
	httpAddr  string
	httpAddr2 string // the echo server's in-process gateway
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`msg=listening grpc=(\S+) http=(\S+)(?: http_inproc=(\S+))?`)

// startProcess runs bin with args and waits for its "listening" log line.
func startProcess(ctx context.Context, name, bin string, args ...string) (*process, error) {
	p := &process{name: name, logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.After(60 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.logs.String()); m != nil {
			p.grpcAddr, p.httpAddr, p.httpAddr2 = m[1], m[2], m[3]
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before listening (%v):\n%s", name, p.waitErr, p.logs.String())
		case <-deadline:
			p.kill()
			return nil, fmt.Errorf("%s did not log its addresses in 60 s:\n%s", name, p.logs.String())
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits (killing after 30 s).
func (p *process) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("%s did not stop in 30 s of SIGTERM", p.name)
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s: %v:\n%s", p.name, p.waitErr, tail(p.logs.String(), 20))
	}
	return nil
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// rss returns the process's resident set size (VmRSS of /proc/PID/status).
func (p *process) rss() (int64, error) {
	return procStatus(p.cmd.Process.Pid, "VmRSS")
}

func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		n, err := strconv.ParseInt(v, 10, 64)
		return n << 10, err
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// metric reads one unlabelled sample from the process's /metrics.
func (p *process) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// cpu returns the CPU time (user plus system) the process has used, from
// /proc/PID/stat (in clock ticks of 10 ms on Linux).
func (p *process) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", p.cmd.Process.Pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", p.cmd.Process.Pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", p.cmd.Process.Pid)
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}

// freeOSMemory asks a server started with --debug-endpoints to collect
// garbage and return freed memory to the OS.
func (p *process) freeOSMemory() error {
	resp, err := http.Post("http://"+p.httpAddr+"/debug/free-os-memory", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /debug/free-os-memory: HTTP %d", resp.StatusCode)
	}
	return nil
}

// profile fetches a CPU profile of d from a server started with
// --debug-endpoints and writes it to path.
func (p *process) profile(d time.Duration, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.httpAddr, max(1, int(d.Seconds()))))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: HTTP %d: %s", resp.StatusCode, b)
	}
	return os.WriteFile(path, b, 0o644)
}
