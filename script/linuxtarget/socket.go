//go:build linux

package linuxtarget

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tcpstated/tcpstated/script/target"
)

var sym = target.Symbols

// call is a socket call running on a goroutine of its own, as a blocking
// call must: the runner's goroutine never blocks in the kernel.
type call struct{ done chan callResult }

type callResult struct {
	res   target.Result
	at    time.Duration
	newFD int // a descriptor accept returned, -1 if none: numbered when consumed
}

// blockWait is how long Call waits for a call before answering Blocked:
// the script's tolerance, so a call the kernel completes at once (after
// softirq work on the other CPU) is not mistaken for a blocked one.
func (t *Target) blockWait() time.Duration {
	return max(t.setup.Tolerance, time.Millisecond)
}

// Call executes one socket call on a real socket in the namespace.
func (t *Target) Call(c *target.Call) target.Result {
	select {
	case <-t.stop:
		return target.Err("EINTR")
	default:
	}
	if c.Name == "socket" {
		return t.socket(c)
	}
	kfd, ok := t.fds[c.FD]
	if !ok && c.Name != "poll" {
		return target.Err("EBADF")
	}
	switch c.Name {
	case "bind":
		return result(0, unix.Bind(kfd, sockaddr(c.Local)))
	case "listen":
		if err := unix.Listen(kfd, int(c.Backlog)); err != nil {
			return target.Err(errnoName(err))
		}
		return target.Result{Local: t.localAddr(kfd)}
	case "shutdown":
		return result(0, unix.Shutdown(kfd, int(c.How)))
	case "close":
		delete(t.fds, c.FD)
		delete(t.nonblk, c.FD)
		return result(0, unix.Close(kfd))
	case "fcntl":
		v, err := unix.FcntlInt(uintptr(kfd), int(c.Cmd), int(c.Arg))
		return result(int64(v), err)
	case "setsockopt":
		return t.setsockopt(kfd, c)
	case "getsockopt":
		return t.getsockopt(kfd, c)
	case "accept", "accept4":
		return t.start(func() callResult {
			nfd, _, err := unix.Accept4(kfd, unix.SOCK_CLOEXEC)
			if err != nil {
				return callResult{res: target.Err(errnoName(err)), newFD: -1}
			}
			return callResult{newFD: nfd}
		})
	case "connect":
		return t.connect(kfd, c)
	case "write", "send", "sendto":
		data := make([]byte, c.Len)
		for i := range data {
			data[i] = byte('A' + i%26)
		}
		// MSG_NOSIGNAL: a write to a reset connection is EPIPE, not a
		// signal to this process.
		flags := int(c.Flags) | unix.MSG_NOSIGNAL
		return t.start(func() callResult {
			n, err := unix.SendmsgN(kfd, data, nil, nil, flags)
			return callResult{res: result(int64(n), err), newFD: -1}
		})
	case "read", "recv", "recvfrom":
		buf := make([]byte, c.Len)
		return t.start(func() callResult {
			n, _, err := unix.Recvfrom(kfd, buf, int(c.Flags))
			r := result(int64(n), err)
			if err == nil && n == 0 && c.Len > 0 {
				r.Detail = "end of file"
			}
			return callResult{res: r, newFD: -1}
		})
	case "poll":
		return t.poll(c)
	case "ioctl":
		if c.Opt != "SIOCATMARK" {
			break
		}
		// Linux's tcp_ioctl: 1 when the next octet read is at the mark.
		v, err := unix.IoctlGetInt(kfd, unix.SIOCATMARK)
		if err != nil {
			return target.Err(errnoName(err))
		}
		return target.Result{Value: &target.Value{Int: int64(v), Text: fmt.Sprint(v)}}
	}
	return target.Result{Skip: fmt.Sprintf("skipped: system call %s is not supported by the kernel target", c.Name)}
}

func (t *Target) socket(c *target.Call) target.Result {
	typ := unix.SOCK_STREAM | unix.SOCK_CLOEXEC
	if c.Type&sym["O_NONBLOCK"] != 0 { // SOCK_NONBLOCK
		typ |= unix.SOCK_NONBLOCK
	}
	var kfd int
	var err error
	t.ns.run(func() { kfd, err = unix.Socket(t.family, typ, unix.IPPROTO_TCP) })
	if err != nil {
		return target.Err(errnoName(err))
	}
	return target.Result{Ret: int64(t.number(kfd))}
}

// number gives a kernel descriptor the script's number: the lowest free
// from 3, as a process of its own would see it.
func (t *Target) number(kfd int) int {
	fd := 3
	for {
		if _, used := t.fds[fd]; !used {
			break
		}
		fd++
	}
	t.fds[fd] = kfd
	return fd
}

// connect starts the connection on a goroutine and reports the local
// port the kernel chose once the SYN is on its way.
func (t *Target) connect(kfd int, c *target.Call) target.Result {
	res := t.start(func() callResult {
		return callResult{res: result(0, unix.Connect(kfd, sockaddr(c.Remote))), newFD: -1}
	})
	// The kernel picks the port inside connect(); wait for it.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		if l := t.localAddr(kfd); l.Port() != 0 {
			res.Local = l
			break
		}
	}
	return res
}

// start runs f on a goroutine. If it returns within blockWait its result
// is the call's; otherwise the call is Blocked and Pending waits for it.
func (t *Target) start(f func() callResult) target.Result {
	c := &call{done: make(chan callResult, 1)}
	go func() {
		r := f()
		r.at = t.Now()
		c.done <- r
	}()
	tm := time.NewTimer(t.blockWait())
	defer tm.Stop()
	select {
	case r := <-c.done:
		return t.finish(r)
	case <-tm.C:
		t.pending = c
		return target.Result{Blocked: true}
	}
}

// finish numbers a descriptor accept returned.
func (t *Target) finish(r callResult) target.Result {
	if r.newFD >= 0 {
		r.res.Ret = int64(t.number(r.newFD))
	}
	return r.res
}

// Pending waits for the call in progress until the clock reads until.
func (t *Target) Pending(until time.Duration) (target.Result, time.Duration, bool) {
	c := t.pending
	if c == nil {
		return target.Result{}, 0, false
	}
	wait := until - t.Now()
	var r callResult
	if wait <= 0 {
		select {
		case r = <-c.done:
		default:
			return target.Result{}, 0, false
		}
	} else {
		tm := time.NewTimer(wait)
		defer tm.Stop()
		select {
		case r = <-c.done:
		case <-tm.C:
			return target.Result{}, 0, false
		case <-t.stop:
			return target.Result{}, 0, false
		}
	}
	t.pending = nil
	res := t.finish(r)
	return res, r.at, true
}

func (t *Target) poll(c *target.Call) target.Result {
	fds := make([]unix.PollFd, len(c.Poll))
	for i, p := range c.Poll {
		kfd, ok := t.fds[p.FD]
		if !ok {
			kfd = -1 // poll ignores negative descriptors; the script's is not open
		}
		fds[i] = unix.PollFd{Fd: int32(kfd), Events: int16(p.Events)}
	}
	return t.start(func() callResult {
		n, err := unix.Poll(fds, int(c.Timeout))
		r := result(int64(n), err)
		if err == nil {
			r.Poll = make([]target.PollFD, len(fds))
			for i := range fds {
				r.Poll[i] = target.PollFD{FD: c.Poll[i].FD, Events: c.Poll[i].Events, Revents: int64(uint16(fds[i].Revents))}
			}
		}
		return callResult{res: r, newFD: -1}
	})
}

func (t *Target) setsockopt(kfd int, c *target.Call) target.Result {
	opt, ok := sym[c.Opt]
	if !ok {
		return target.Result{Skip: "skipped: setsockopt " + c.Opt + " is not known to the kernel target"}
	}
	if c.Opt == "SO_LINGER" {
		if c.Linger == nil {
			return target.Result{Skip: "skipped: SO_LINGER needs {onoff=N, linger=N}"}
		}
		l := &unix.Linger{Onoff: int32(c.Linger.OnOff), Linger: int32(c.Linger.Linger)}
		return result(0, unix.SetsockoptLinger(kfd, int(c.Level), int(opt), l))
	}
	return result(0, unix.SetsockoptInt(kfd, int(c.Level), int(opt), int(c.Value)))
}

func (t *Target) getsockopt(kfd int, c *target.Call) target.Result {
	opt, ok := sym[c.Opt]
	if !ok {
		return target.Result{Skip: "skipped: getsockopt " + c.Opt + " is not known to the kernel target"}
	}
	if c.Opt == "TCP_INFO" {
		in, err := unix.GetsockoptTCPInfo(kfd, int(c.Level), int(opt))
		if err != nil {
			return target.Err(errnoName(err))
		}
		return target.Result{Info: tcpInfo(in)}
	}
	v, err := unix.GetsockoptInt(kfd, int(c.Level), int(opt))
	if err != nil {
		return target.Err(errnoName(err))
	}
	text := ""
	if c.Opt == "SO_ERROR" && v != 0 {
		text = fmt.Sprintf("%d (%s)", v, unix.ErrnoName(unix.Errno(v)))
	}
	return target.Result{Value: &target.Value{Int: int64(v), Text: text}}
}

// tcpInfo is the part of the kernel's struct tcp_info the runner judges.
func tcpInfo(in *unix.TCPInfo) *target.TCPInfo {
	// The window scales are two 4-bit fields in the byte after
	// tcpi_options (tcpi_snd_wscale first, so in the low bits on the
	// little- and big-endian ABIs alike: GCC packs bit fields from the low
	// end on little-endian machines, and Linux's uapi header swaps their
	// order for big-endian ones). x/sys/unix leaves the byte as padding.
	ws := *(*uint8)(unsafe.Add(unsafe.Pointer(in), unsafe.Offsetof(in.Options)+1))
	state := fmt.Sprint(in.State)
	if i := int(in.State) - 1; i >= 0 && i < len(target.TCPStates) {
		state = target.TCPStates[i]
	}
	return &target.TCPInfo{State: state, Fields: map[string]int64{
		"tcpi_snd_mss": int64(in.Snd_mss), "tcpi_rcv_mss": int64(in.Rcv_mss), "tcpi_advmss": int64(in.Advmss),
		"tcpi_rto": int64(in.Rto), "tcpi_ato": int64(in.Ato), "tcpi_snd_cwnd": int64(in.Snd_cwnd),
		"tcpi_snd_ssthresh": int64(in.Snd_ssthresh), "tcpi_unacked": int64(in.Unacked),
		"tcpi_retransmits": int64(in.Retransmits), "tcpi_total_retrans": int64(in.Total_retrans),
		"tcpi_pmtu": int64(in.Pmtu), "tcpi_options": int64(in.Options),
		"tcpi_snd_wscale": int64(ws & 0xf), "tcpi_rcv_wscale": int64(ws >> 4),
	}}
}

func (t *Target) localAddr(kfd int) netip.AddrPort {
	sa, err := unix.Getsockname(kfd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func sockaddr(a netip.AddrPort) unix.Sockaddr {
	if a.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

// result is a return value, or -1 with the errno's name.
func result(ret int64, err error) target.Result {
	if err != nil {
		return target.Err(errnoName(err))
	}
	return target.Result{Ret: ret}
}

// errnoName is packetdrill's name of an errno ("EAGAIN").
func errnoName(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return fmt.Sprintf("errno %d", int(en))
	}
	return err.Error()
}
