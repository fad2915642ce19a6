package bench

import (
	"bufio"
	"context"
	"fmt"
	"github.com/tcpstated/tcpstated/internal/testserver"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A process is a server the benchmark started: the real tcpstated or the
// echo server, both started by internal/testserver.
type process struct {
	*testserver.Server
	name      string
	grpcAddr  string
	httpAddr  string
	httpAddr2 string // the echo server's in-process gateway
}

var inproc = regexp.MustCompile(`\bhttp_inproc=(\S+)`)

// startProcess runs bin with args and waits for its "listening" log line.
func startProcess(ctx context.Context, name, bin string, args ...string) (*process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := testserver.Start(testserver.Config{Binary: bin, Command: args})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &process{Server: s, name: name, grpcAddr: s.GRPCAddr, httpAddr: s.HTTPAddr}
	if m := inproc.FindStringSubmatch(s.Listening); m != nil {
		p.httpAddr2 = m[1]
	}
	return p, nil
}

// stop sends SIGTERM and waits (killing after 30 s).
func (p *process) stop() error {
	if err := p.Stop(30 * time.Second); err != nil {
		return fmt.Errorf("%s: %v:\n%s", p.name, err, tail(p.Logs(), 20))
	}
	return nil
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
	return procStatus(p.Pid(), "VmRSS")
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", p.Pid())
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", p.Pid())
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", p.Pid())
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
