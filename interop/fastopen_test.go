package interop

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// tcpiOptSynData is TCPI_OPT_SYN_DATA (linux/tcp.h): the SYN's data was
// acknowledged by the SYN,ACK (the kernel's Fast Open client succeeded).
const tcpiOptSynData = 32

// TestInteropFastOpen is check 7, TCP Fast Open (RFC 7413) between the
// kernel and tcpstated, both roles:
//
//   - 7a: the kernel connects to `tcpstated tun --listen --fast-open`. Its
//     first connection asks for a cookie (sendto with MSG_FASTOPEN, no
//     cookie cached: RFC 7413 §4.2.1), the second sends its data on the
//     SYN with that cookie (§4.2.2). tcpstated's explanations must show
//     the data accepted in SYN-RECEIVED (FASTOPEN_COOKIE_VALID, before the
//     handshake's last ACK); the kernel must say its SYN data was
//     acknowledged (TCP_INFO tcpi_options TCPI_OPT_SYN_DATA, nstat
//     TcpExtTCPFastOpenActive).
//   - 7b: `tcpstated tun --connect --fast-open` to a kernel listener with
//     TCP_FASTOPEN: the first connection gets a cookie, a second one made
//     through the API (ConnectConfig.fast_open_data) carries data on its
//     SYN, and the kernel's accept() returns it with the data before the
//     handshake completes (nstat TcpExtTCPFastOpenPassive).
//
// net.ipv4.tcp_fastopen is set inside each lab's namespace only (it is a
// per-namespace sysctl); the test checks the host's value is unchanged.
func TestInteropFastOpen(t *testing.T) {
	if why := requirements(); why != "" {
		skipOrFail(t, why)
	}
	if _, err := run("sysctl", "-n", "net.ipv4.tcp_fastopen"); err != nil {
		skipOrFail(t, "sysctl (procps) cannot read net.ipv4.tcp_fastopen: "+err.Error())
	}
	s := newSuite(t)
	host, herr := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen")
	t.Run("kernel-connects", s.kernelFastOpen)
	t.Run("tcpstated-connects", s.tcpstatedFastOpen)
	after, aerr := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen")
	s.record(t, "7", "the host's net.ipv4.tcp_fastopen is untouched", herr == nil && aerr == nil && bytes.Equal(host, after),
		"host value before %q (%v), after %q (%v)", bytes.TrimSpace(host), herr, bytes.TrimSpace(after), aerr)
}

// setFastOpenSysctl sets net.ipv4.tcp_fastopen inside the lab's namespace
// and reads it back.
func (l *lab) setFastOpenSysctl(v int) error {
	if _, err := l.exec("sysctl", "-q", "-w", "net.ipv4.tcp_fastopen="+strconv.Itoa(v)); err != nil {
		return err
	}
	out, err := l.exec("sysctl", "-n", "net.ipv4.tcp_fastopen")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != strconv.Itoa(v) {
		return fmt.Errorf("net.ipv4.tcp_fastopen reads %q in the namespace, want %d", strings.TrimSpace(out), v)
	}
	return nil
}

// nstatCounter reads one counter (absolute, -a) of the lab's kernel.
func (l *lab) nstatCounter(name string) (int64, error) {
	out, err := l.exec("nstat", "-az", name)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("nstat has no %s:\n%s", name, out)
}

// tfoExchange is what the kernel saw of one Fast Open client connection.
type tfoExchange struct {
	local   string // the kernel's address, as ss prints it
	options uint8  // tcpi_options once the echo came back
	echoed  []byte
}

// kernelTFOConnect opens a connection from the kernel with
// sendto(MSG_FASTOPEN) carrying msg (on the SYN if a cookie is cached),
// reads msg back from tcpstated's echo, reads TCP_INFO and closes.
func (l *lab) kernelTFOConnect(addr netip.AddrPort, msg []byte) (*tfoExchange, error) {
	x := &tfoExchange{}
	err := l.do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		tv := unix.Timeval{Sec: 10}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
		if err := unix.Sendto(fd, msg, unix.MSG_FASTOPEN, sa); err != nil {
			return fmt.Errorf("sendto(MSG_FASTOPEN): %w", err)
		}
		if ls, err := unix.Getsockname(fd); err == nil {
			if in, ok := ls.(*unix.SockaddrInet4); ok {
				x.local = netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)).String()
			}
		}
		buf := make([]byte, 4096)
		for len(x.echoed) < len(msg) {
			n, err := unix.Read(fd, buf)
			if n <= 0 || err != nil {
				return fmt.Errorf("reading the echo after %d bytes: %v", len(x.echoed), err)
			}
			x.echoed = append(x.echoed, buf[:n]...)
		}
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return err
		}
		x.options = info.Options
		unix.Shutdown(fd, unix.SHUT_WR)
		for { // to tcpstated's FIN
			n, err := unix.Read(fd, buf)
			if n <= 0 || err != nil {
				break
			}
		}
		return nil
	})
	return x, err
}

// records reads the tun session's whole log with explanations.
func (p *tunProc) records() ([]*pb.Record, error) {
	lc := pb.NewLogServiceClient(p.conn)
	var all []*pb.Record
	tok := ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := lc.ListRecords(ctx, &pb.ListRecordsRequest{Parent: "sessions/tun", PageSize: 1000, PageToken: tok, Explain: true})
		cancel()
		if err != nil {
			return nil, err
		}
		all = append(all, r.Records...)
		if tok = r.NextPageToken; tok == "" {
			return all, nil
		}
	}
}

// explained finds the first OUTPUT record with an explanation of code
// (after index from) and returns the record and that explanation.
func explained(recs []*pb.Record, code string, from uint64) (*pb.Record, *pb.Explanation) {
	for _, r := range recs {
		if r.Index < from || r.Kind != pb.RecordKind_RECORD_KIND_OUTPUT {
			continue
		}
		for _, e := range r.GetOutput().GetExplanations() {
			if e.Code == code {
				return r, e
			}
		}
	}
	return nil, nil
}

// transitionTo finds the first record at or after from in which endpoint
// (a resource name) enters state.
func transitionTo(recs []*pb.Record, endpoint, state string, from uint64) *pb.Record {
	for _, r := range recs {
		if r.Index < from {
			continue
		}
		for _, tr := range r.GetOutput().GetTransitions() {
			if tr.Endpoint == endpoint && tr.ToStateName == state {
				return r
			}
		}
	}
	return nil
}

// kernelFastOpen is check 7a.
func (s *suite) kernelFastOpen(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	if err := l.setFastOpenSysctl(1); err != nil { // 1: the client role
		t.Fatalf("setting net.ipv4.tcp_fastopen in the namespace: %v", err)
	}
	p := l.startTun(t, "--listen", "80", "--echo", "--fast-open")
	addr := netip.MustParseAddrPort(tcpstatedAddr + ":80")
	first, second := []byte("first connection: cookie request\n"), []byte("second connection: data on the SYN\n")

	x1, err := l.kernelTFOConnect(addr, first)
	metrics, _ := l.exec("ip", "tcp_metrics", "show", tcpstatedAddr)
	ok := err == nil && bytes.Equal(x1.echoed, first) && x1.options&tcpiOptSynData == 0 && strings.Contains(metrics, "fo_cookie")
	s.record(t, "7", "kernel sendto(MSG_FASTOPEN) without a cookie: cookie request, the kernel caches tcpstated's cookie", ok,
		"echo %q (%v); tcpi_options=%#x (SYN data acked: %v); ip tcp_metrics: %s",
		x1.echoed, err, x1.options, x1.options&tcpiOptSynData != 0, strings.TrimSpace(metrics))
	if err != nil {
		t.Log(p.output())
		return
	}
	active0, _ := l.nstatCounter("TcpExtTCPFastOpenActive")
	x2, err := l.kernelTFOConnect(addr, second)
	active1, nerr := l.nstatCounter("TcpExtTCPFastOpenActive")
	kOK := err == nil && bytes.Equal(x2.echoed, second) && x2.options&tcpiOptSynData != 0 && nerr == nil && active1 == active0+1
	s.record(t, "7", "kernel sendto(MSG_FASTOPEN) with the cookie: the kernel says its SYN data was acknowledged", kOK,
		"echo %q (%v); tcpi_options=%#x (TCPI_OPT_SYN_DATA %v); nstat TcpExtTCPFastOpenActive %d → %d (%v)",
		x2.echoed, err, x2.options, x2.options&tcpiOptSynData != 0, active0, active1, nerr)

	// tcpstated's side, from its log: the cookie given to the first SYN,
	// then the second SYN's data taken with the valid cookie, in the
	// record of that SYN, before the connection reaches ESTABLISHED.
	time.Sleep(300 * time.Millisecond)
	recs, err := p.records()
	if err != nil {
		t.Fatalf("ListRecords: %v", err)
	}
	sent, _ := explained(recs, "FASTOPEN_COOKIE_SENT", 0)
	var valid *pb.Record
	var ve *pb.Explanation
	if sent != nil {
		valid, ve = explained(recs, "FASTOPEN_COOKIE_VALID", sent.Index+1)
	}
	var detail []string
	tOK := sent != nil && valid != nil && ve.Fields["SEG.LEN"] == uint64(len(second))
	if valid != nil {
		// The SYN's own record: the input just before its outputs.
		in := recs[valid.Index-1]
		seg := in.GetSegment()
		synData := seg != nil && hasFlag(seg, "SYN") && !hasFlag(seg, "ACK") && seg.PayloadLength == uint32(len(second))
		var synAck *pb.Segment
		for _, sg := range valid.GetOutput().GetSegments() {
			if hasFlag(sg, "SYN") && hasFlag(sg, "ACK") {
				synAck = sg
			}
		}
		acks := synAck != nil && seg != nil && synAck.Ack == seg.Seq+1+uint32(len(second))
		readable := false
		for _, ev := range valid.GetOutput().GetEvents() {
			if ev.Kind == pb.EventKind_EVENT_KIND_DATA_READABLE && ev.Endpoint == ve.Endpoint {
				readable = true
			}
		}
		est := transitionTo(recs, ve.Endpoint, "ESTABLISHED", valid.Index)
		before := est != nil && est.Index > valid.Index
		tOK = tOK && synData && acks && readable && before
		estAt := "never"
		if est != nil {
			estAt = fmt.Sprintf("record %d", est.Index)
		}
		detail = append(detail, fmt.Sprintf("record %d: SYN with %d bytes (seq %d); %s %q; SYN,ACK ack=%d (SEQ+1+%d: %v); DATA_READABLE %v; ESTABLISHED at %s",
			valid.Index, seg.GetPayloadLength(), seg.GetSeq(), ve.Code, ve.Text, synAck.GetAck(), len(second), acks, readable, estAt))
	}
	s.record(t, "7", "tcpstated took the data on the SYN in SYN-RECEIVED, before the handshake completed (explanations in ListRecords)", tOK,
		"FASTOPEN_COOKIE_SENT in record %v; FASTOPEN_COOKIE_VALID SEG.LEN=%v; %s", recIndex(sent), fieldOf(ve, "SEG.LEN"), strings.Join(detail, "; "))
}

func hasFlag(s *pb.Segment, f string) bool { return slices.Contains(s.GetFlags(), f) }

func recIndex(r *pb.Record) string {
	if r == nil {
		return "none"
	}
	return strconv.FormatUint(r.Index, 10)
}

func fieldOf(e *pb.Explanation, k string) string {
	if e == nil {
		return "none"
	}
	return strconv.FormatUint(e.Fields[k], 10)
}

// tfoListen opens a kernel listener with TCP_FASTOPEN (queue 16) inside
// the namespace.
func (l *lab) tfoListen(addr string) (*net.TCPListener, error) {
	var ln net.Listener
	err := l.do(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 16) })
			if err != nil {
				return err
			}
			return serr
		}}
		var err error
		ln, err = lc.Listen(context.Background(), "tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// tcpstatedFastOpen is check 7b.
func (s *suite) tcpstatedFastOpen(t *testing.T) {
	l := newLab(t, s.bin, s.dir)
	if err := l.setFastOpenSysctl(2); err != nil { // 2: the server role
		t.Fatalf("setting net.ipv4.tcp_fastopen in the namespace: %v", err)
	}
	ln, err := l.tfoListen(kernelAddr + ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The first connection: a cookie request from tcpstated; it sends 5
	// bytes once established and closes when they are sent.
	p := l.startTun(t, "--connect", ln.Addr().String(), "--fast-open", "--send-bytes", "5", "--close-after", "sent", "--hold")
	ln.SetDeadline(time.Now().Add(30 * time.Second))
	k, err := ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept: %v\n%s", err, p.output())
	}
	x := exchange(k, 0, tcpstatedFirst, 20*time.Second)
	if _, err := p.waitLine("done ", stateTimeout); err != nil {
		t.Log(err)
	}
	passive0, _ := l.nstatCounter("TcpExtTCPFastOpenPassive")
	recs, err := p.records()
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := explained(recs, "FASTOPEN_COOKIE_CACHED", 0)
	s.record(t, "7", "tcpstated --connect --fast-open: cookie request, the kernel's cookie cached", cached != nil && x.received == 5,
		"FASTOPEN_COOKIE_CACHED in record %s; the kernel read %d bytes (%v)", recIndex(cached), x.received, x.readErr)
	if cached == nil {
		return
	}

	// The second connection, through the API: data on the SYN.
	msg := []byte("tcpstated's data on the SYN")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := p.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: "sessions/tun", Mode: &pb.CreateEndpointRequest_Connect{
		Connect: &pb.ConnectConfig{LocalAddress: tcpstatedAddr + ":40123", RemoteAddress: ln.Addr().String(), FastOpen: true, FastOpenData: msg}}})
	if err != nil {
		t.Fatalf("CreateEndpoint with fast_open_data: %v", err)
	}
	var synLen uint32
	for _, sg := range resp.GetOutputs().GetSegments() {
		if hasFlag(sg, "SYN") {
			synLen = sg.PayloadLength
		}
	}
	k2, err := ln.AcceptTCP()
	got := make([]byte, len(msg))
	n := 0
	if err == nil {
		k2.SetReadDeadline(time.Now().Add(10 * time.Second))
		for n < len(msg) {
			m, rerr := k2.Read(got[n:])
			n += m
			if rerr != nil {
				break
			}
		}
	}
	passive1, nerr := l.nstatCounter("TcpExtTCPFastOpenPassive")
	time.Sleep(300 * time.Millisecond)
	recs, _ = p.records()
	acked, _ := explained(recs, "FASTOPEN_DATA_ACKED", cached.Index+1)
	ok := err == nil && synLen == uint32(len(msg)) && bytes.Equal(got[:n], msg) && nerr == nil && passive1 == passive0+1 && acked != nil
	s.record(t, "7", "tcpstated ConnectConfig.fast_open_data to a kernel TCP_FASTOPEN listener: data on the SYN, accepted by the kernel", ok,
		"SYN payload %d bytes; kernel accept() (%v) read %q; nstat TcpExtTCPFastOpenPassive %d → %d (%v); FASTOPEN_DATA_ACKED in record %s",
		synLen, err, got[:n], passive0, passive1, nerr, recIndex(acked))
	if k2 != nil {
		k2.Close()
	}
	p.ep.AbortEndpoint(ctx, &pb.AbortEndpointRequest{Name: resp.Endpoint.GetName()})
}
