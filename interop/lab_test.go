package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// The addresses of every lab: the kernel owns tun0 at kernelAddr and routes
// tcpstatedAddr through it.
const (
	kernelAddr    = "10.9.0.1"
	tcpstatedAddr = "10.9.0.2"
	tunMTU        = 1500
)

// requirements checks what the suite needs and returns why it cannot run.
func requirements() string {
	if runtime.GOOS != "linux" {
		return "TUN devices and network namespaces are Linux only"
	}
	if os.Geteuid() != 0 {
		return "not root: creating network namespaces and TUN devices needs root (run `sudo make interop`)"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "no /dev/net/tun: " + err.Error()
	}
	for _, tool := range []string{"ip", "tc", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found: install iproute2"
		}
	}
	return ""
}

// skipOrFail skips the test with why, or fails it when CI=true: in CI the
// suite must run.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("FAIL interop suite cannot run under CI=true: %s", why)
	}
	t.Skipf("SKIP interop suite: %s", why)
}

// buildTcpstated builds the binary once per test run (without the race
// detector: the suite measures throughput).
func buildTcpstated(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tcpstated")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/tcpstated/tcpstated/cmd/tcpstated")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building tcpstated: %v\n%s", err, out)
	}
	return bin
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

var labSeq atomic.Int64

// lab is one network namespace with a TUN device, tun0: the kernel at
// kernelAddr, tcpstatedAddr routed through tun0.
type lab struct {
	t    *testing.T
	name string
	dir  string // short path for unix sockets
	bin  string
	tuns atomic.Int64
}

func newLab(t *testing.T, bin, dir string) *lab {
	t.Helper()
	return newLabAt(t, bin, dir, kernelAddr, tcpstatedAddr)
}

// newLabAt is newLab with the kernel at self and peer routed through tun0
// (the far side of a kernel-to-kernel relay has them the other way round).
func newLabAt(t *testing.T, bin, dir, self, peer string) *lab {
	t.Helper()
	l := &lab{t: t, name: fmt.Sprintf("tcpst%d-%d", os.Getpid(), labSeq.Add(1)), dir: dir, bin: bin}
	if _, err := run("ip", "netns", "add", l.name); err != nil {
		skipOrFail(t, "cannot create a network namespace: "+err.Error())
	}
	t.Cleanup(func() {
		// What the kernel's TCP saw: out-of-order arrivals, duplicates,
		// retransmissions (tcpstated's segments are meant to arrive in order).
		if out, err := l.exec("nstat", "-az", "TcpRetransSegs", "TcpExtTCPOFOQueue", "TcpExtTCPDSACKOldSent", "TcpExtTCPDSACKRecv", "TcpExtTCPBacklogDrop"); err == nil {
			var kv []string
			for line := range strings.SplitSeq(out, "\n") {
				if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
					kv = append(kv, f[0]+"="+f[1])
				}
			}
			t.Logf("kernel counters: %s", strings.Join(kv, " "))
		}
		if _, err := run("ip", "netns", "del", l.name); err != nil {
			t.Errorf("removing namespace %s: %v", l.name, err)
		}
	})
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "tuntap", "add", "dev", "tun0", "mode", "tun"},
		// No IPv6 link-local address: nothing but our TCP on the device.
		{"ip", "link", "set", "tun0", "addrgenmode", "none"},
		{"ip", "link", "set", "tun0", "mtu", strconv.Itoa(tunMTU)},
		{"ip", "addr", "add", self + "/32", "dev", "tun0"},
		{"ip", "link", "set", "tun0", "up"},
		{"ip", "route", "add", peer + "/32", "dev", "tun0"},
	} {
		if _, err := l.exec(c...); err != nil {
			skipOrFail(t, "cannot set up the TUN device in the namespace: "+err.Error())
		}
	}
	if dir := os.Getenv("TCPSTATED_INTEROP_CAPTURE"); dir != "" {
		l.capture(t, dir)
	}
	return l
}

// artifact names a capture or log of this lab in test t: the test's name
// and the lab's, unique per lab.
func (l *lab) artifact(t *testing.T) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + l.name
}

// capture records tun0 into DIR/TEST-LAB.pcapng with tshark (for
// debugging: TCPSTATED_INTEROP_CAPTURE=DIR). The lab's name is in the file
// name because a test may run several labs (bench-loss's kernel pairs).
func (l *lab) capture(t *testing.T, dir string) {
	file := filepath.Join(dir, l.artifact(t)+".pcapng")
	cmd := exec.Command("ip", "netns", "exec", l.name, "tshark", "-q", "-i", "tun0", "-w", file)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // tshark and its dumpcap, stopped together
	if err := cmd.Start(); err != nil {
		t.Logf("no capture: %v", err)
		return
	}
	for i := 0; i < 100; i++ { // until tshark has written its header
		if fi, err := os.Stat(file); err == nil && fi.Size() > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("capturing tun0 into %s", file)
	t.Cleanup(func() {
		time.Sleep(200 * time.Millisecond)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// exec runs a command inside the namespace.
func (l *lab) exec(args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", l.name}, args...)...)
}

// do runs f on an OS thread that has entered the namespace. Sockets f
// creates belong to the namespace for good; the thread is never handed
// back to the runtime (it exits with the goroutine).
func (l *lab) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread dies with this goroutine
		fd, err := unix.Open("/run/netns/"+l.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", l.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// dial connects from the kernel (inside the namespace) to addr.
func (l *lab) dial(addr string) (*net.TCPConn, error) {
	var c net.Conn
	err := l.do(func() error {
		var err error
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err = d.Dial("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// listen opens a kernel listener inside the namespace.
func (l *lab) listen(addr string) (*net.TCPListener, error) {
	var ln net.Listener
	err := l.do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// netem puts a netem qdisc on tun0 (the kernel's packets to tcpstated).
// It returns false when the kernel has no netem (CONFIG_NET_SCH_NETEM).
func (l *lab) netem(spec string) (bool, error) {
	out, err := l.exec(append([]string{"tc", "qdisc", "add", "dev", "tun0", "root", "netem"}, strings.Fields(spec)...)...)
	if err != nil {
		if strings.Contains(out, "unknown") || strings.Contains(out, "No such file") {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ss runs ss inside the namespace with the given flags.
func (l *lab) ss(flags string) (string, error) { return l.exec("ss", flags) }

// socketState returns the state ss -tan shows for the kernel socket
// local→remote ("" when there is none: CLOSED).
func (l *lab) socketState(local, remote string) (string, error) {
	out, err := l.ss("-tan")
	if err != nil {
		return "", err
	}
	return ssState(out, local, remote), nil
}

// ssState finds the state of local→remote in the output of ss -tan.
func ssState(out, local, remote string) string {
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[3] == local && f[4] == remote {
			return f[0]
		}
	}
	return ""
}

var wscaleRE = regexp.MustCompile(`wscale:(\d+),(\d+)`)
var mssRE = regexp.MustCompile(`\bmss:(\d+)`)

// ssInfo is what ss -tni says about one kernel socket.
type ssInfo struct {
	line                 string
	sndWscale, rcvWscale int // -1 when ss shows no wscale
	mss                  int
}

// ssDetails finds local→remote in the output of ss -tni (a state line,
// then an indented line of details).
func ssDetails(out, local, remote string) (ssInfo, bool) {
	lines := strings.Split(out, "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) >= 5 && f[3] == local && f[4] == remote && i+1 < len(lines) {
			d := strings.TrimSpace(lines[i+1])
			info := ssInfo{line: d, sndWscale: -1, rcvWscale: -1}
			if m := wscaleRE.FindStringSubmatch(d); m != nil {
				info.sndWscale, _ = strconv.Atoi(m[1])
				info.rcvWscale, _ = strconv.Atoi(m[2])
			}
			if m := mssRE.FindStringSubmatch(d); m != nil {
				info.mss, _ = strconv.Atoi(m[1])
			}
			return info, true
		}
	}
	return ssInfo{}, false
}

// tcpInfo options bits (linux/tcp.h).
const (
	tcpiOptTimestamps = 1
	tcpiOptSACK       = 2
	tcpiOptWscale     = 4
)

// kernelTCPInfo reads TCP_INFO of a kernel socket.
func kernelTCPInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		return nil, err
	}
	return info, ierr
}

// ---- tcpstated tun, running in a lab ----

// tunProc is one `tcpstated tun` process inside a lab, with a gRPC client
// to its in-process server (--grpc-listen on a unix socket).
type tunProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	more   chan struct{} // closed and replaced when a line arrives
	stderr bytes.Buffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
	conn   *grpc.ClientConn
	ep     pb.EndpointServiceClient
}

// startTun starts `tcpstated tun --dev tun0` in the lab with args.
func (l *lab) startTun(t *testing.T, args ...string) *tunProc {
	t.Helper()
	sock := filepath.Join(l.dir, fmt.Sprintf("%s-%d.sock", l.name, l.tuns.Add(1)))
	argv := []string{"netns", "exec", l.name, l.bin, "tun", "--dev", "tun0", "--local", tcpstatedAddr,
		"--peer", kernelAddr, "--grpc-listen", "unix:" + sock, "--log-level", "warn"}
	if dir := os.Getenv("TCPSTATED_INTEROP_CAPTURE"); dir != "" {
		// Keep the session's log beside the capture (tcpstated log dump).
		logs := filepath.Join(dir, l.artifact(t)+fmt.Sprintf("-log%d", l.tuns.Load()))
		argv = append(argv, "--data-dir", logs, "--fsync", "never")
	}
	argv = append(argv, args...)
	p := &tunProc{t: t, cmd: exec.Command("ip", argv...), more: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting tcpstated tun: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	if _, err := p.waitLine("api ", 15*time.Second); err != nil {
		t.Fatalf("tcpstated tun did not start: %v", err)
	}
	// The application's endpoint exists once it says so.
	for _, a := range args {
		if a == "--listen" {
			if _, err := p.waitLine("listening ", 15*time.Second); err != nil {
				t.Fatalf("tcpstated tun did not listen: %v", err)
			}
		}
	}
	p.conn, err = grpc.NewClient("unix:"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	p.ep = pb.NewEndpointServiceClient(p.conn)
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// waitLine returns the first output line starting with prefix, waiting up
// to timeout for it.
func (p *tunProc) waitLine(prefix string, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		for ; seen < len(p.lines); seen++ {
			if strings.HasPrefix(p.lines[seen], prefix) {
				l := p.lines[seen]
				p.mu.Unlock()
				return l, nil
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.exited:
			// Look once more at lines that came with the exit.
			p.mu.Lock()
			for ; seen < len(p.lines); seen++ {
				if strings.HasPrefix(p.lines[seen], prefix) {
					l := p.lines[seen]
					p.mu.Unlock()
					return l, nil
				}
			}
			p.mu.Unlock()
			return "", fmt.Errorf("tcpstated tun exited (%v) without a %q line; %s", p.err, prefix, p.output())
		case <-deadline.C:
			return "", fmt.Errorf("no %q line after %v; %s", prefix, timeout, p.output())
		}
	}
}

// output is everything the process printed, for failure messages.
func (p *tunProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", strings.Join(p.lines, "\n"), p.stderr.String())
}

// stop ends the process (SIGTERM, then SIGKILL) and closes the client.
func (p *tunProc) stop() {
	if p.conn != nil {
		p.conn.Close()
	}
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	// What the bridge counted, and anything it warned about.
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if strings.HasPrefix(l, "stats ") {
			p.t.Logf("tcpstated tun %s", l)
		}
	}
	if e := strings.TrimSpace(p.stderr.String()); e != "" {
		p.t.Logf("tcpstated tun stderr:\n%s", e)
	}
}

// endpoint gets an endpoint of the tun's session.
func (p *tunProc) endpoint(name string) (*pb.Endpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := p.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return r.Endpoint, nil
}

// waitState polls an endpoint until it is in state (an RFC 9293 name).
func (p *tunProc) waitState(name, state string, timeout time.Duration) (*pb.Endpoint, error) {
	deadline := time.Now().Add(timeout)
	for {
		ep, err := p.endpoint(name)
		if err == nil && ep.StateName == state {
			return ep, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return nil, err
			}
			return ep, fmt.Errorf("%s is %s after %v, want %s", name, ep.StateName, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// path is the state changes the process printed for an endpoint
// ("state NAME FROM TO CAUSE" lines), as "FROM→TO (CAUSE)".
func (p *tunProc) path(name string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	type step struct {
		at   time.Duration
		text string
	}
	var steps []step
	for _, l := range p.lines {
		f := strings.Fields(l)
		if len(f) == 6 && f[0] == "state" && f[1] == name {
			at, _ := time.ParseDuration(f[5])
			steps = append(steps, step{at, f[2] + "→" + f[3] + " (" + f[4] + ")"})
		}
	}
	// Lines come from two goroutines: order them by the session clock.
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.text
	}
	return out
}

// lineFields parses "word NAME k=v k=v ..." into NAME and the pairs.
func lineFields(line string) (string, map[string]string) {
	f := strings.Fields(line)
	kv := map[string]string{}
	name := ""
	if len(f) > 1 {
		name = f[1]
	}
	for _, w := range f[min(2, len(f)):] {
		if k, v, ok := strings.Cut(w, "="); ok {
			kv[k] = strings.TrimSuffix(v, ":")
		}
	}
	return name, kv
}

// ---- the kernel's side of a transfer ----

// pattern is what both sides send: byte i of a stream is i mod 251.
var pattern = func() []byte {
	b := make([]byte, 251*256+65536)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

// patternSHA is the SHA-256 of the first n bytes of the pattern.
func patternSHA(n int64) string {
	h := sha256.New()
	writePattern(h, n)
	return hex.EncodeToString(h.Sum(nil))
}

func writePattern(w io.Writer, n int64) error {
	for off := int64(0); off < n; {
		k := min(n-off, 65536)
		s := off % 251
		if _, err := w.Write(pattern[s : s+k]); err != nil {
			return err
		}
		off += k
	}
	return nil
}

// closeOrder says who closes first.
type closeOrder int

const (
	// tcpstatedFirst: the kernel writes, reads to the end of file (the FIN
	// of tcpstated) and then closes: the passive close.
	tcpstatedFirst closeOrder = iota
	// kernelFirst: the kernel writes, shuts down its sending side (FIN),
	// reads to the end of file and closes: the active close.
	kernelFirst
)

// transfer is what the kernel saw of one exchange.
type transfer struct {
	start       time.Time // when the kernel began writing and reading
	received    int64
	sha         string
	first, last time.Time
	readErr     error // nil at a clean end of file
	writeErr    error
	elapsed     time.Duration
}

// mbps is the kernel's receive rate, from the start of the exchange to
// the last byte, in MB/s.
func (x *transfer) mbps() float64 { return rateUntil(x.received, x.start, x.last) }

// rateUntil is n bytes from start to end in MB/s (10^6 bytes per second).
func rateUntil(n int64, start, end time.Time) float64 {
	d := end.Sub(start)
	if d <= 0 || n == 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

// exchange writes n pattern bytes on c while reading until end of file or
// an error, ending the connection in the given order. The deadline bounds
// the whole exchange.
func exchange(c *net.TCPConn, n int64, order closeOrder, timeout time.Duration) *transfer {
	start := time.Now()
	c.SetDeadline(start.Add(timeout))
	x := &transfer{start: start}
	var wg sync.WaitGroup
	wg.Go(func() {
		x.writeErr = writePattern(c, n)
		if x.writeErr == nil && order == kernelFirst {
			x.writeErr = c.CloseWrite()
		}
	})
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			now := time.Now()
			if x.received == 0 {
				x.first = now
			}
			x.last = now
			x.received += int64(k)
			h.Write(buf[:k])
		}
		if err != nil {
			if err != io.EOF {
				x.readErr = err
			}
			break
		}
	}
	wg.Wait()
	x.sha = hex.EncodeToString(h.Sum(nil))
	x.elapsed = time.Since(start)
	if x.readErr == nil {
		c.Close()
	}
	return x
}

// isErrno reports whether err is the system error e.
func isErrno(err error, e syscall.Errno) bool { return errors.Is(err, e) }
