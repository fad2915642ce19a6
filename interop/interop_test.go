package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// transferBytes is the size of every bulk transfer, each way.
const transferBytes = 10_000_000

// netemSpec is the impairment of check 4, as given to tc(8).
const netemSpec = "loss 5% delay 20ms reorder 10%"

// Timeouts: generous, the machine is shared and make test runs packages
// in parallel.
const (
	plainTimeout = 120 * time.Second
	netemTimeout = 240 * time.Second
	stateTimeout = 10 * time.Second
)

// The window scale tcpstated offers with its 4 MiB receive buffer (the
// smallest shift that covers it, RFC 7323 §2.3) and the MSS both sides
// announce on a 1500-byte link, and send with timestamps on (12 option
// bytes per segment, RFC 7323 §3 and RFC 6691).
const (
	tcpstatedWscale = 7
	linkMSS         = tunMTU - 40
	tsMSS           = linkMSS - 12
)

// TestInterop is the suite; see doc.go. Each check logs PASS or FAIL with
// what it saw; the table at the end repeats them with the throughput.
func TestInterop(t *testing.T) {
	if why := requirements(); why != "" {
		skipOrFail(t, why)
	}
	s := newSuite(t)

	t.Run("1-kernel-connects", func(t *testing.T) {
		t.Run("tcpstated-closes-first", func(t *testing.T) { s.kernelConnects(t, tcpstatedFirst, "") })
		t.Run("kernel-closes-first", func(t *testing.T) { s.kernelConnects(t, kernelFirst, "") })
	})
	t.Run("2-tcpstated-connects", func(t *testing.T) {
		t.Run("tcpstated-closes-first", func(t *testing.T) { s.tcpstatedConnects(t, tcpstatedFirst, "") })
		t.Run("kernel-closes-first", func(t *testing.T) { s.tcpstatedConnects(t, kernelFirst, "") })
	})
	t.Run("3-refused", func(t *testing.T) {
		t.Run("kernel-to-closed-port", s.kernelRefused)
		t.Run("tcpstated-to-closed-port", s.tcpstatedRefused)
	})
	t.Run("4-netem", func(t *testing.T) {
		// The two slow transfers run side by side, each in its own lab.
		t.Run("kernel-connects", func(t *testing.T) { t.Parallel(); s.kernelConnects(t, tcpstatedFirst, netemSpec) })
		t.Run("tcpstated-connects", func(t *testing.T) { t.Parallel(); s.tcpstatedConnects(t, kernelFirst, netemSpec) })
	})
	t.Run("5-abort", func(t *testing.T) {
		t.Run("kernel-resets", s.kernelAborts)
		t.Run("tcpstated-resets", s.tcpstatedAborts)
	})
	t.Run("6-nc-echo", s.ncEcho)
	t.Run("kernel-loopback", s.loopback)
}

// suite holds what the checks share and the results they record.
type suite struct {
	bin, dir string
	mu       sync.Mutex
	checks   []row
	rates    []rate
}

type row struct{ id, check, result, detail string }

type rate struct {
	scenario, direction string
	mbps                float64
}

// record logs a PASS or FAIL line for one check and keeps it for the table.
func (s *suite) record(t *testing.T, id, check string, ok bool, format string, args ...any) bool {
	t.Helper()
	detail := fmt.Sprintf(format, args...)
	result := "PASS"
	if ok {
		t.Logf("PASS %s %s: %s", id, check, detail)
	} else {
		result = "FAIL"
		t.Errorf("FAIL %s %s: %s", id, check, detail)
	}
	s.mu.Lock()
	s.checks = append(s.checks, row{id, check, result, detail})
	s.mu.Unlock()
	return ok
}

func (s *suite) rate(scenario, direction string, mbps float64) {
	s.mu.Lock()
	s.rates = append(s.rates, rate{scenario, direction, mbps})
	s.mu.Unlock()
}

// summary prints the checks and rates as Markdown tables (the form
// docs/CONFORMANCE.md keeps them in), and writes them to the file named
// by TCPSTATED_INTEROP_REPORT if set.
func (s *suite) summary(t *testing.T, took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "| # | check | result | what was seen |\n|---|---|---|---|\n")
	for _, r := range s.checks {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.id, r.check, r.result, strings.ReplaceAll(r.detail, "|", "\\|"))
	}
	if len(s.rates) > 0 {
		fmt.Fprintf(&b, "\n| transfer (10 MB each way at once) | direction | MB/s |\n|---|---|---|\n")
		for _, r := range s.rates {
			fmt.Fprintf(&b, "| %s | %s | %.2f |\n", r.scenario, r.direction, r.mbps)
		}
	}
	host, _ := os.Hostname()
	uname, _ := run("uname", "-sr")
	fmt.Fprintf(&b, "\nmachine: %s, %d CPUs, %s; date: %s; suite time: %v\n", host, runtime.NumCPU(),
		strings.TrimSpace(uname), time.Now().UTC().Format("2006-01-02 15:04 MST"), took.Round(time.Second))
	t.Log("\n" + b.String())
	if path := os.Getenv("TCPSTATED_INTEROP_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}
}

// conn is one connection between the kernel and tcpstated in a lab.
type conn struct {
	l             *lab
	p             *tunProc
	k             *net.TCPConn // the kernel's socket
	name          string       // tcpstated's endpoint
	kLocal, kPeer string       // the kernel socket's addresses, as ss prints them
}

// policy is tcpstated's --close-after for a close order.
func policy(o closeOrder) string {
	if o == tcpstatedFirst {
		return "sent"
	}
	return "eof"
}

func orderName(o closeOrder) string {
	if o == tcpstatedFirst {
		return "tcpstated closes first"
	}
	return "kernel closes first"
}

// impair applies the netem spec to a lab's tun0 and returns the extra tun
// flags when the kernel has no netem and tcpstated must emulate it.
func (s *suite) impair(t *testing.T, l *lab, spec string) ([]string, string) {
	if spec == "" {
		return nil, ""
	}
	ok, err := l.netem(spec)
	if err != nil {
		t.Fatalf("tc qdisc add dev tun0 root netem %s: %v", spec, err)
	}
	if ok {
		return nil, "tc netem qdisc on tun0"
	}
	t.Logf("NOTE this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off); tcpstated tun --netem %q "+
		"applies the same impairment in user space to the packets tun0 delivers (the direction a qdisc on tun0 impairs)", spec)
	return []string{"--netem", spec}, "netem emulated by tcpstated tun --netem (kernel has no sch_netem)"
}

// kernelConnects is check 1 (and 4 with netem): the kernel connects to a
// tcpstated listener, the options are checked, 10 MB go each way, and
// the close ends in the right states.
func (s *suite) kernelConnects(t *testing.T, order closeOrder, spec string) {
	id, scenario := "1", "kernel → tcpstated listener"
	if spec != "" {
		id, scenario = "4", "kernel → tcpstated listener, netem"
	}
	l := newLab(t, s.bin, s.dir)
	extra, how := s.impair(t, l, spec)
	p := l.startTun(t, append([]string{"--listen", "80", "--send-bytes", strconv.Itoa(transferBytes), "--sink",
		"--close-after", policy(order)}, extra...)...)
	k, err := l.dial(tcpstatedAddr + ":80")
	if !s.record(t, id, "handshake: kernel connect() to tcpstated", err == nil, "dial %s:80: %v", tcpstatedAddr, err) {
		return
	}
	acc, err := p.waitLine("accepted ", stateTimeout)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := lineFields(acc)
	c := &conn{l: l, p: p, k: k, name: name, kLocal: k.LocalAddr().String(), kPeer: k.RemoteAddr().String()}
	s.transferAndClose(t, c, id, scenario, order, spec, how)
}

// tcpstatedConnects is check 2 (and 4): tcpstated connects to a kernel
// listener.
func (s *suite) tcpstatedConnects(t *testing.T, order closeOrder, spec string) {
	id, scenario := "2", "tcpstated → kernel listener"
	if spec != "" {
		id, scenario = "4", "tcpstated → kernel listener, netem"
	}
	l := newLab(t, s.bin, s.dir)
	extra, how := s.impair(t, l, spec)
	ln, err := l.listen(kernelAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := l.startTun(t, append([]string{"--connect", ln.Addr().String(), "--send-bytes", strconv.Itoa(transferBytes), "--sink",
		"--close-after", policy(order), "--hold"}, extra...)...)
	ln.SetDeadline(time.Now().Add(30 * time.Second))
	k, err := ln.AcceptTCP()
	if !s.record(t, id, "handshake: kernel accept() of tcpstated's connect", err == nil, "accept on %s: %v", ln.Addr(), err) {
		t.Log(p.output())
		return
	}
	line, err := p.waitLine("connecting ", stateTimeout)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := lineFields(line)
	c := &conn{l: l, p: p, k: k, name: name, kLocal: k.LocalAddr().String(), kPeer: k.RemoteAddr().String()}
	s.transferAndClose(t, c, id, scenario, order, spec, how)
}

// transferAndClose checks the negotiated options (once per direction of
// the handshake, on the plain runs), moves 10 MB each way and checks the
// close.
func (s *suite) transferAndClose(t *testing.T, c *conn, id, scenario string, order closeOrder, spec, how string) {
	if spec == "" && order == tcpstatedFirst {
		s.checkOptions(t, c, id)
	}
	timeout := plainTimeout
	if spec != "" {
		timeout = netemTimeout
	}
	x := exchange(c.k, transferBytes, order, timeout)
	done, err := c.p.waitLine("done "+c.name, timeout)
	if err != nil {
		t.Log(err)
	}
	_, kv := lineFields(done)
	want := patternSHA(transferBytes)
	what := fmt.Sprintf("10 MB each way, %s", orderName(order))
	if spec != "" {
		what = fmt.Sprintf("10 MB each way through %q (%s)", spec, how)
	}
	ok := x.readErr == nil && x.writeErr == nil && x.received == transferBytes && x.sha == want &&
		kv["received"] == strconv.Itoa(transferBytes) && kv["received_sha256"] == want
	s.record(t, id, what, ok,
		"kernel received %d bytes sha256 %.16s… (read err %v, write err %v); tcpstated received %s bytes sha256 %.16s…; pattern sha256 %.16s…; %.1f s",
		x.received, x.sha, x.readErr, x.writeErr, kv["received"], kv["received_sha256"], want, x.elapsed.Seconds())
	if ok {
		tag := scenario + ", " + orderName(order)
		if spec != "" {
			tag = scenario
		}
		// Both directions run at once; each rate is 10 MB over the time
		// from the kernel's start to the receiver's last byte (tcpstated's
		// is on the same clock: its done line says when).
		endNS, _ := strconv.ParseInt(kv["recv_end_unix_ns"], 10, 64)
		s.rate(tag, "kernel → tcpstated", rateUntil(transferBytes, x.start, time.Unix(0, endNS)))
		s.rate(tag, "tcpstated → kernel", x.mbps())
	}
	if spec != "" || !ok {
		return
	}
	switch order {
	case tcpstatedFirst:
		// RFC 9293 §3.10.4: the side that sends the first FIN ends in
		// TIME-WAIT; the other goes LAST-ACK → CLOSED. One exception is
		// legitimate: a RST in TIME-WAIT closes it (§3.10.7.4, and Linux
		// does the same with tcp_rfc1337=0). It happens when the kernel
		// retransmits its FIN (tail loss probe) before tcpstated's ACK of
		// it arrives: the ACK of the copy finds the kernel socket gone.
		ep, err := c.p.waitState(c.name, "TIME-WAIT", stateTimeout)
		kstate, kerr := waitKernelState(c.l, c.kLocal, c.kPeer, "", stateTimeout)
		path := c.p.path(c.name)
		entered := slices.ContainsFunc(path, func(s string) bool { return strings.Contains(s, "→TIME-WAIT") })
		rstInTW := len(path) > 0 && strings.HasPrefix(path[len(path)-1], "TIME-WAIT→CLOSED") && strings.Contains(path[len(path)-1], "RST")
		ok := entered && kerr == nil && (err == nil || (stateOf(ep) == "CLOSED" && rstInTW))
		note := ""
		if err != nil && ok {
			note = "; TIME-WAIT was ended by the kernel's RST to the ACK of its retransmitted FIN (RFC 9293 §3.10.7.4)"
		}
		s.record(t, id, "close, tcpstated first: tcpstated in TIME-WAIT, kernel socket closed", ok,
			"tcpstated %s via %s%s; kernel socket %s in ss -tan (%v)", stateOf(ep), strings.Join(path, ", "), note, kstate, kerr)
	case kernelFirst:
		kstate, kerr := waitKernelState(c.l, c.kLocal, c.kPeer, "TIME-WAIT", stateTimeout)
		ep, err := c.p.waitState(c.name, "CLOSED", stateTimeout)
		path := c.p.path(c.name)
		okPath := slices.ContainsFunc(path, func(s string) bool { return strings.HasPrefix(s, "CLOSE-WAIT→LAST-ACK") }) &&
			slices.ContainsFunc(path, func(s string) bool { return strings.HasPrefix(s, "LAST-ACK→CLOSED") })
		s.record(t, id, "close, kernel first: kernel in TIME-WAIT, tcpstated LAST-ACK → CLOSED", kerr == nil && err == nil && okPath,
			"kernel socket %s in ss -tan (%v); tcpstated %s via %s (%v)", kstate, kerr, stateOf(ep), strings.Join(path, ", "), err)
	}
}

func stateOf(ep *pb.Endpoint) string {
	if ep == nil {
		return "(unknown)"
	}
	return ep.StateName
}

// waitKernelState polls ss -tan until the kernel socket local→peer is in
// state ("" for no socket: CLOSED).
func waitKernelState(l *lab, local, peer, state string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, err := l.socketState(local, peer)
		if err != nil {
			return "", err
		}
		if got == state {
			if got == "" {
				got = "gone (CLOSED)"
			}
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("the kernel socket is %q after %v, want %q", got, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkOptions compares what each side says was negotiated with what the
// RFCs say must come of the SYNs: both sides offer MSS 1460, SACK-permitted
// (RFC 2018), timestamps (RFC 7323 §3.2) and window scale (RFC 7323 §2),
// so all are on, each side scales by the shift the other announced, and
// segments carry 1448 bytes (the MSS less the 12 bytes of timestamps).
func (s *suite) checkOptions(t *testing.T, c *conn, id string) {
	ep, err := c.p.endpoint(c.name)
	if err != nil {
		t.Fatal(err)
	}
	info, ierr := kernelTCPInfo(c.k)
	ssOut, serr := c.l.ss("-tni")
	ssi, found := ssDetails(ssOut, c.kLocal, c.kPeer)
	if ierr != nil || serr != nil || !found {
		s.record(t, id, "options negotiated", false, "TCP_INFO: %v; ss -tni: %v, socket %s→%s found: %v\n%s", ierr, serr, c.kLocal, c.kPeer, found, ssOut)
		return
	}
	n := ep.GetNegotiated()
	tOK := n.GetMss() == linkMSS && n.GetWindowScaleOk() && n.GetRcvScale() == tcpstatedWscale &&
		int(n.GetSndScale()) == ssi.rcvWscale && n.GetTimestamps() && n.GetSackPermitted() && ep.GetTcb().GetMss() == tsMSS
	s.record(t, id, "options: tcpstated (GetEndpoint) agrees with the RFCs", tOK,
		"negotiated mss=%d window_scale_ok=%v snd_scale=%d (kernel's offer %d) rcv_scale=%d timestamps=%v sack_permitted=%v; tcb.mss=%d (want %d)",
		n.GetMss(), n.GetWindowScaleOk(), n.GetSndScale(), ssi.rcvWscale, n.GetRcvScale(), n.GetTimestamps(), n.GetSackPermitted(), ep.GetTcb().GetMss(), tsMSS)
	opts := info.Options
	kOK := opts&tcpiOptTimestamps != 0 && opts&tcpiOptSACK != 0 && opts&tcpiOptWscale != 0 &&
		info.Snd_mss == tsMSS && ssi.sndWscale == tcpstatedWscale && ssi.mss == tsMSS
	s.record(t, id, "options: the kernel (TCP_INFO, ss -tni) agrees", kOK,
		"tcpi_options=%#x (ts=%v sack=%v wscale=%v) tcpi_snd_mss=%d; ss: wscale:%d,%d mss:%d (`%s`)",
		opts, opts&tcpiOptTimestamps != 0, opts&tcpiOptSACK != 0, opts&tcpiOptWscale != 0, info.Snd_mss, ssi.sndWscale, ssi.rcvWscale, ssi.mss, firstWords(ssi.line, 8))
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}

// refusedByTcpstated is check 3a: a SYN to a port
// tcpstated does not listen on is answered with RST (RFC 9293 §3.10.7.1),
// which the kernel reports as ECONNREFUSED.
func (s *suite) refusedByTcpstated(t *testing.T, l *lab) {
	_, err := l.dial(tcpstatedAddr + ":81")
	s.record(t, "3", "kernel connect() to a port tcpstated does not listen on: ECONNREFUSED", isErrno(err, syscall.ECONNREFUSED),
		"dial %s:81: %v", tcpstatedAddr, err)
}

func (s *suite) kernelRefused(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	l.startTun(t, "--listen", "80", "--sink")
	s.refusedByTcpstated(t, l)
}

// tcpstatedRefused is check 3b: tcpstated connects to a kernel port with no
// listener; the kernel's RST in SYN-SENT is "connection refused".
func (s *suite) tcpstatedRefused(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	p := l.startTun(t, "--connect", kernelAddr+":9", "--hold")
	line, err := p.waitLine("error ", stateTimeout)
	name, _ := lineFields(line)
	var ep *pb.Endpoint
	if err == nil {
		ep, err = p.endpoint(name)
	}
	ok := err == nil && strings.HasSuffix(line, ": connection refused") && ep.GetError() == "connection refused" && ep.GetStateName() == "CLOSED"
	s.record(t, "3", "tcpstated connect to a kernel port with no listener: \"connection refused\"", ok,
		"tun printed %q; GetEndpoint: state %s, error %q (%v)", line, stateOf(ep), ep.GetError(), err)
}

// kernelAborts is check 5a: the kernel closes with SO_LINGER 0, which
// sends RST; tcpstated reports "connection reset".
func (s *suite) kernelAborts(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	p := l.startTun(t, "--listen", "80", "--sink")
	k, err := l.dial(tcpstatedAddr + ":80")
	if err != nil {
		t.Fatal(err)
	}
	acc, err := p.waitLine("accepted ", stateTimeout)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := lineFields(acc)
	werr := writePattern(k, 100_000)
	time.Sleep(200 * time.Millisecond) // let the data be acknowledged first
	k.SetLinger(0)
	k.Close()
	line, lerr := p.waitLine("error "+name, stateTimeout)
	ep, eerr := p.waitState(name, "CLOSED", stateTimeout)
	ok := werr == nil && lerr == nil && eerr == nil && strings.HasSuffix(line, ": connection reset") && ep.GetError() == "connection reset"
	s.record(t, "5", "kernel close() with SO_LINGER 0 (RST): tcpstated reports \"connection reset\"", ok,
		"tun printed %q (%v); GetEndpoint: state %s, error %q (%v)", line, lerr, stateOf(ep), ep.GetError(), eerr)
}

// tcpstatedAborts is check 5b: tcpstated aborts (AbortEndpoint sends RST,
// RFC 9293 §3.10.5) once its data is acknowledged; the kernel reads the
// data and then ECONNRESET.
func (s *suite) tcpstatedAborts(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	const n = 100_000
	p := l.startTun(t, "--listen", "80", "--send-bytes", strconv.Itoa(n), "--close-after", "sent", "--abort")
	k, err := l.dial(tcpstatedAddr + ":80")
	if err != nil {
		t.Fatal(err)
	}
	x := exchange(k, 0, tcpstatedFirst, plainTimeout)
	acc, _ := p.waitLine("accepted ", stateTimeout)
	name, _ := lineFields(acc)
	ep, eerr := p.waitState(name, "CLOSED", stateTimeout)
	ok := isErrno(x.readErr, syscall.ECONNRESET) && x.received == n && x.sha == patternSHA(n) && eerr == nil
	s.record(t, "5", "tcpstated AbortEndpoint (RST): the kernel's read fails with ECONNRESET", ok,
		"kernel read %d bytes (sha256 matches: %v), then %v; tcpstated %s (%v)", x.received, x.sha == patternSHA(n), x.readErr, stateOf(ep), eerr)
}

// ncEcho is check 6: a program that is not ours (OpenBSD netcat) talks to
// tcpstated's echo service.
func (s *suite) ncEcho(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("FAIL nc not found (install netcat-openbsd)")
		}
		t.Skip("SKIP nc not found (install netcat-openbsd)")
	}
	l := newLab(t, s.bin, s.dir)
	l.startTun(t, "--listen", "7", "--echo")
	msg := "hello from the kernel through nc\n"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.name, "nc", "-N", "-w", "10", tcpstatedAddr, "7")
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.CombinedOutput()
	s.record(t, "6", "nc (netcat-openbsd) to tcpstated --echo: the line comes back", err == nil && string(out) == msg,
		"nc printed %q (%v)", out, err)
}

// loopback measures the kernel talking to itself over 127.0.0.1 in a
// namespace: the same 10 MB each way, for scale.
func (s *suite) loopback(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	ln, err := l.listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var srv *transfer
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			srv = &transfer{readErr: err}
			return
		}
		srv = exchange(c, transferBytes, kernelFirst, plainTimeout)
	})
	c, err := l.dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cli := exchange(c, transferBytes, kernelFirst, plainTimeout)
	wg.Wait()
	want := patternSHA(transferBytes)
	if s.record(t, "-", "kernel loopback (127.0.0.1 in the namespace), for scale", cli.sha == want && srv.sha == want,
		"10 MB each way in %.2f s", cli.elapsed.Seconds()) {
		s.rate("kernel ⇄ kernel over loopback", "client → server", srv.mbps())
		s.rate("kernel ⇄ kernel over loopback", "server → client", cli.mbps())
	}
}

// newSuite builds tcpstated into a temporary folder, removed when t ends,
// and prints the checks' summary then.
func newSuite(t *testing.T) *suite {
	t.Helper()
	start := time.Now()
	dir, err := os.MkdirTemp("", "tcpst-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &suite{bin: buildTcpstated(t, dir), dir: dir}
	t.Cleanup(func() { s.summary(t, time.Since(start)) })
	return s
}
