package script

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// sock is a socket the script opened. The runner plays the kernel's socket
// layer: file descriptors, blocking, and errors reported once, as Linux
// does; the engine holds the TCP state.
type sock struct {
	fd          int
	nonblock    bool
	port        uint16 // bound port; 0 if not bound
	listener    fsm.EndpointID
	conn        fsm.EndpointID
	flow        *flow
	linger0     bool // SO_LINGER {onoff=1, linger=0}: close sends RST
	errReported bool // the connection's error was returned once already
	nodelay     *bool
	connected   bool // a connect() call has reported the connection established
}

// outcome is what a system call did.
type outcome struct {
	ret    int64
	errno  string
	block  bool                                          // the call would block
	retry  func() (o outcome, at time.Duration, ok bool) // for a blocking call: try again
	skip   string                                        // the call cannot be honoured: skipped
	fail   string                                        // a check other than the return value failed
	detail string                                        // extra detail of what happened
}

func errOut(errno string) outcome { return outcome{ret: -1, errno: errno} }

// blocked is a blocking call in progress ("start...end" time).
type blocked struct {
	idx        int // its LineResult
	line       int
	sc         *Syscall
	start, end time.Duration
	retry      func() (outcome, time.Duration, bool)
}

type syscallFunc func(r *runner, idx int, sc *Syscall) outcome

var syscalls map[string]syscallFunc

func init() {
	syscalls = map[string]syscallFunc{
		"socket": (*runner).sysSocket, "bind": (*runner).sysBind, "listen": (*runner).sysListen,
		"accept": (*runner).sysAccept, "accept4": (*runner).sysAccept, "connect": (*runner).sysConnect,
		"write": (*runner).sysWrite, "send": (*runner).sysWrite, "sendto": (*runner).sysWrite,
		"read": (*runner).sysRead, "recv": (*runner).sysRead, "recvfrom": (*runner).sysRead,
		"shutdown": (*runner).sysShutdown, "close": (*runner).sysClose, "fcntl": (*runner).sysFcntl,
		"setsockopt": (*runner).sysSetsockopt, "getsockopt": (*runner).sysGetsockopt,
	}
}

// syscall runs a system call line.
func (r *runner) syscall(idx int, ev *Event) {
	sc := ev.Syscall
	r.cur.Expected = sc.result()
	h := syscalls[sc.Name]
	if h == nil {
		r.skipLine(fmt.Sprintf("skipped: system call %s is not supported by tcpstated", sc.Name))
		return
	}
	mark := len(r.cur.Engine)
	out := h(r, idx, sc)
	r.drain()
	if out.skip != "" {
		r.skipLine(out.skip)
		return
	}
	blocking := ev.Time.Kind == TimeBlocking
	if out.block {
		if !blocking {
			r.cur.Actual = "would block"
			r.failf("%s would block: nothing has completed it at %s, and the runner advances only by script time; "+
				"write it as START...END %s(...) to let it block until END", sc.Name, formatSeconds(r.now()), sc.Name)
			return
		}
		if r.pending != nil {
			r.failf("another blocking call (line %d) has not returned yet", r.pending.line)
			return
		}
		end := r.resolveEnd(ev.Time)
		r.pending = &blocked{idx: len(r.rep.Lines) - 1, line: ev.Pos.Line, sc: sc, start: r.last, end: end, retry: out.retry}
		r.cur.Actual = "blocked"
		return
	}
	if blocking {
		if end := r.resolveEnd(ev.Time); end-r.now() > r.h.tolerance {
			r.judge(r.cur, sc, out)
			r.failf("%s returned at once at %s; the script expects it to block until %s", sc.Name, formatSeconds(r.now()), formatSeconds(end))
			return
		}
	}
	r.judge(r.cur, sc, out)
	if r.cur.Status == StatusFail && len(r.cur.Engine) > mark {
		r.cur.Reason += " (the engine: " + strings.Join(r.cur.Engine[mark:], "; ") + ")"
	}
}

// resolveEnd is the end of a blocking time: absolute, or relative to the start.
func (r *runner) resolveEnd(t Time) time.Duration {
	if t.Start.Rel || t.End.Rel {
		return r.last + t.End.D
	}
	return t.End.D
}

func (r *runner) skipLine(reason string) {
	r.cur.Status, r.cur.Reason = StatusSkip, reason
	r.rep.Skipped++
}

// judge compares a call's outcome with the script's "= RET [ERRNO]".
func (r *runner) judge(lr *LineResult, sc *Syscall, out outcome) {
	lr.Actual = fmt.Sprintf("= %d", out.ret)
	if out.errno != "" {
		lr.Actual += " " + out.errno
	}
	if out.detail != "" {
		lr.Actual += " (" + out.detail + ")"
	}
	fail := func(msg string) {
		lr.Status = StatusFail
		if lr.Reason != "" {
			lr.Reason += "; "
		}
		lr.Reason += msg
	}
	if out.fail != "" {
		fail(out.fail)
	}
	if sc.Ret.Kind == ExprEllipsis {
		return
	}
	want, ok := evalInt(sc.Ret)
	if !ok {
		fail(fmt.Sprintf("cannot evaluate the expected result %s", sc.Ret))
		return
	}
	if want != out.ret {
		msg := fmt.Sprintf("%s returned %d, expected %d", sc.Name, out.ret, want)
		if out.errno != "" {
			msg = fmt.Sprintf("%s returned %d %s, expected %d", sc.Name, out.ret, out.errno, want)
		}
		fail(msg)
		return
	}
	if sc.Errno != "" && !sameErrno(sc.Errno, out.errno) {
		got := out.errno
		if got == "" {
			got = "no errno"
		}
		fail(fmt.Sprintf("%s errno: expected %s, got %s", sc.Name, sc.Errno, got))
	}
}

// sameErrno compares errno names by value (EAGAIN is EWOULDBLOCK).
func sameErrno(a, b string) bool {
	va, oka := symbols[a]
	vb, okb := symbols[b]
	if oka && okb {
		return va == vb
	}
	return a == b
}

// checkPending completes a blocking call if it can, and fails it if the
// script has moved past its end time without it returning.
func (r *runner) checkPending(next time.Duration) {
	b := r.pending
	if b == nil {
		return
	}
	lr := &r.rep.Lines[b.idx]
	out, at, done := b.retry()
	r.drain()
	tol := r.h.tolerance
	if done {
		r.pending = nil
		r.judge(lr, b.sc, out)
		lr.Actual += " at " + formatSeconds(at)
		if at < b.end-tol || at > b.end+tol {
			lr.Status = StatusFail
			if lr.Reason != "" {
				lr.Reason += "; "
			}
			lr.Reason += fmt.Sprintf("%s returned at %s, expected at %s (tolerance %s)", b.sc.Name, formatSeconds(at), formatSeconds(b.end), tol)
		}
	} else if next > b.end+tol {
		r.pending = nil
		lr.Status, lr.Actual = StatusFail, "still blocked at "+formatSeconds(r.now())
		lr.Reason = fmt.Sprintf("%s did not return by %s%s", b.sc.Name, formatSeconds(b.end), r.lastInbound())
	}
	if lr.Status == StatusFail {
		r.fail(lr.Line)
		if r.cur != lr && r.cur.Status == StatusPass {
			r.cur.Status, r.cur.Reason = StatusSkip, fmt.Sprintf("not run: line %d failed", lr.Line)
			r.rep.NotRun++
		}
	}
}

// evalInt evaluates a numeric expression: numbers, symbols, A|B, htons(N).
func evalInt(e *Expr) (int64, bool) {
	if e == nil {
		return 0, false
	}
	switch e.Kind {
	case ExprInt:
		return e.Int, true
	case ExprSymbol:
		v, ok := symbols[e.Name]
		return v, ok
	case ExprOr:
		var v int64
		for _, x := range e.Elems {
			n, ok := evalInt(x)
			if !ok {
				return 0, false
			}
			v |= n
		}
		return v, true
	case ExprCall:
		if (e.Name == "htons" || e.Name == "htonl" || e.Name == "ntohs" || e.Name == "ntohl") && len(e.Elems) == 1 {
			return evalInt(e.Elems[0])
		}
	case ExprArray:
		if len(e.Elems) == 1 {
			return evalInt(e.Elems[0])
		}
	}
	return 0, false
}

// structField returns the value of a named field of a struct literal.
func structField(e *Expr, names ...string) (*Expr, bool) {
	if e == nil || e.Kind != ExprStruct {
		return nil, false
	}
	for _, f := range e.Fields {
		for _, n := range names {
			if f.Name == n {
				return f.Value, true
			}
		}
	}
	return nil, false
}

// argFD reads the fd argument.
func (r *runner) argFD(sc *Syscall) (*sock, outcome, bool) {
	if len(sc.Args) == 0 {
		return nil, errOut("EBADF"), false
	}
	fd, ok := evalInt(sc.Args[0])
	if !ok {
		return nil, outcome{skip: fmt.Sprintf("skipped: %s's first argument %s is not a file descriptor number", sc.Name, sc.Args[0])}, false
	}
	s := r.socks[int(fd)]
	if s == nil {
		return nil, errOut("EBADF"), false
	}
	return s, outcome{}, true
}

// argInt reads argument i as a number.
func argInt(sc *Syscall, i int) (int64, bool) {
	if i >= len(sc.Args) {
		return 0, false
	}
	return evalInt(sc.Args[i])
}

// portOf reads the port of a sockaddr literal such as
// {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}.
func portOf(e *Expr) (uint16, bool) {
	v, ok := structField(e, "sin_port", "sin6_port")
	if !ok {
		return 0, false
	}
	n, ok := evalInt(v)
	if !ok || n <= 0 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// errnoOf maps an engine error to the errno Linux returns.
func errnoOf(err error, write bool) string {
	switch {
	case errors.Is(err, fsm.ErrConnectionReset):
		return "ECONNRESET"
	case errors.Is(err, fsm.ErrConnectionRefused):
		return "ECONNREFUSED"
	case errors.Is(err, fsm.ErrTimedOut):
		return "ETIMEDOUT"
	case errors.Is(err, fsm.ErrConnectionClosing):
		return "EPIPE"
	case errors.Is(err, fsm.ErrConnectionExists):
		return "EADDRINUSE"
	case errors.Is(err, fsm.ErrInvalidAddress):
		return "EINVAL"
	case errors.Is(err, fsm.ErrEndpointLimit):
		return "ENOBUFS"
	case errors.Is(err, fsm.ErrInsufficientResources), errors.Is(err, fsm.ErrNoConnection):
		return "EAGAIN"
	case errors.Is(err, fsm.ErrIsListener), errors.Is(err, fsm.ErrNotListener):
		return "EINVAL"
	case write:
		return "EPIPE"
	}
	return "ENOTCONN"
}

// connErr is the error a closed connection reports, once (Linux clears
// sk_err when it returns it).
func (r *runner) connErr(s *sock) error {
	if s.conn == 0 {
		return nil
	}
	in, ok := r.e.Endpoint(s.conn)
	if !ok || in.State != fsm.Closed || in.Err == nil || s.errReported {
		return nil
	}
	return in.Err
}

func (r *runner) sysSocket(idx int, sc *Syscall) outcome {
	if t, ok := argInt(sc, 1); ok && t&0xf != symbols["SOCK_STREAM"] {
		return outcome{skip: "skipped: only SOCK_STREAM sockets are supported"}
	}
	fd := 3
	for r.socks[fd] != nil {
		fd++
	}
	s := &sock{fd: fd}
	if t, ok := argInt(sc, 1); ok && t&symbols["O_NONBLOCK"] != 0 { // SOCK_NONBLOCK
		s.nonblock = true
	}
	r.socks[fd] = s
	return outcome{ret: int64(fd)}
}

func (r *runner) sysBind(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	if s.port != 0 {
		return errOut("EINVAL")
	}
	s.port = r.h.bindPort
	if len(sc.Args) > 1 {
		if p, ok := portOf(sc.Args[1]); ok {
			s.port = p
		}
	}
	return outcome{}
}

func (r *runner) sysListen(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	if s.conn != 0 {
		return errOut("EINVAL")
	}
	if s.listener != 0 {
		return outcome{detail: "already listening: no effect"}
	}
	backlog, ok := argInt(sc, 1)
	if !ok || backlog < 1 {
		backlog = 1 // the engine reads 0 as its default; Linux's listen(fd, 0) queues one
	}
	if s.port == 0 {
		s.port = r.h.bindPort
	}
	id, err := r.e.Listen(netip.AddrPortFrom(r.h.localIP, s.port), int(min(backlog, 1<<20)))
	if err != nil {
		return errOut(errnoOf(err, false))
	}
	s.listener = id
	r.listenPort = s.port
	return outcome{detail: fmt.Sprintf("endpoint %d, accept queue %d", id, backlog)}
}

func (r *runner) sysAccept(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	if s.listener == 0 {
		return errOut("EINVAL")
	}
	try := func() (outcome, time.Duration, bool) {
		id, err := r.e.Accept(s.listener)
		if errors.Is(err, fsm.ErrNoConnection) {
			return outcome{}, 0, false
		}
		if err != nil {
			return errOut(errnoOf(err, false)), r.now(), true
		}
		fd := 3
		for r.socks[fd] != nil {
			fd++
		}
		ns := &sock{fd: fd, conn: id, port: s.port}
		at := r.now()
		if in, ok := r.e.Endpoint(id); ok {
			ns.flow = r.flowByRemote(in.Local, in.Remote)
			if t, ok := r.estAt[id]; ok {
				at = t
			}
		}
		r.socks[fd] = ns
		return outcome{ret: int64(fd), detail: fmt.Sprintf("endpoint %d", id)}, at, true
	}
	if out, _, done := try(); done {
		return out
	}
	if s.nonblock {
		return errOut("EAGAIN")
	}
	return outcome{block: true, retry: try}
}

func (r *runner) sysConnect(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	if s.listener != 0 {
		return errOut("EISCONN")
	}
	if s.conn != 0 {
		// connect() again on a non-blocking socket: still in progress,
		// connected, or the error that ended the attempt.
		in, _ := r.e.Endpoint(s.conn)
		switch {
		case in.State == fsm.SynSent || in.State == fsm.SynReceived:
			return errOut("EALREADY")
		case in.State == fsm.Closed:
			if err := r.connErr(s); err != nil {
				s.errReported = true
				return errOut(errnoOf(err, false))
			}
			return errOut("ECONNABORTED")
		case !s.connected:
			s.connected = true
			return outcome{}
		}
		return errOut("EISCONN")
	}
	remote := netip.AddrPortFrom(r.h.remoteIP, r.h.connectPort)
	if len(sc.Args) > 1 {
		if p, ok := portOf(sc.Args[1]); ok {
			remote = netip.AddrPortFrom(r.h.remoteIP, p)
		}
	}
	port := s.port
	if port == 0 {
		port = r.nextLocal
		r.nextLocal++
	}
	local := netip.AddrPortFrom(r.h.localIP, port)
	f := r.newActiveFlow(local, remote)
	id, err := r.e.Connect(local, remote)
	if err != nil {
		r.flows[f.n-1] = nil
		return errOut(errnoOf(err, false))
	}
	s.conn, s.flow, s.port = id, f, port
	if s.nonblock {
		return errOut("EINPROGRESS")
	}
	try := func() (outcome, time.Duration, bool) {
		in, ok := r.e.Endpoint(id)
		switch {
		case !ok:
			return errOut("ECONNABORTED"), r.now(), true
		case in.State == fsm.Closed:
			s.errReported = true
			at := r.now()
			if t, ok := r.closedAt[id]; ok {
				at = t
			}
			return errOut(errnoOf(in.Err, false)), at, true
		case in.State >= fsm.Established:
			s.connected = true
			at := r.now()
			if t, ok := r.estAt[id]; ok {
				at = t
			}
			return outcome{}, at, true
		}
		return outcome{}, 0, false
	}
	return outcome{block: true, retry: try}
}

// dataLen reads the length argument of write/read/send/recv.
func dataLen(sc *Syscall) (int, bool) {
	n, ok := argInt(sc, 2)
	if !ok || n < 0 || n > 1<<20 {
		return 0, false
	}
	return int(n), true
}

// ioArgs reads the arguments write/send and read/recv share: the socket,
// the length, and send/recv flags (plain is the call without flags).
func (r *runner) ioArgs(sc *Syscall, plain string) (s *sock, n int, detail string, o outcome, ok bool) {
	s, o, ok = r.argFD(sc)
	if !ok {
		return nil, 0, "", o, false
	}
	n, ok = dataLen(sc)
	if !ok {
		return nil, 0, "", outcome{skip: fmt.Sprintf("skipped: %s's length %s must be a number up to 1 MiB", sc.Name, argText(sc, 2))}, false
	}
	if sc.Name != plain && len(sc.Args) > 3 {
		if fl, ok := argInt(sc, 3); !ok || fl != 0 {
			detail = "flags " + argText(sc, 3) + " ignored"
		}
	}
	return s, n, detail, outcome{}, true
}

func (r *runner) sysWrite(idx int, sc *Syscall) outcome {
	s, n, detail, o, ok := r.ioArgs(sc, "write")
	if !ok {
		return o
	}
	if s.conn == 0 {
		return errOut("EPIPE")
	}
	if err := r.connErr(s); err != nil {
		s.errReported = true
		return errOut(errnoOf(err, true))
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte('A' + i%26)
	}
	try := func() (outcome, time.Duration, bool) {
		k, err := r.e.Send(s.conn, data)
		switch {
		case errors.Is(err, fsm.ErrInsufficientResources):
			return outcome{}, 0, false
		case err != nil:
			if s.errReported {
				return errOut("EPIPE"), r.now(), true
			}
			s.errReported = true
			return errOut(errnoOf(err, true)), r.now(), true
		}
		return outcome{ret: int64(k), detail: detail}, r.now(), true
	}
	if out, _, done := try(); done {
		return out
	}
	if s.nonblock {
		return errOut("EAGAIN")
	}
	return outcome{block: true, retry: try}
}

func argText(sc *Syscall, i int) string {
	if i < len(sc.Args) {
		return sc.Args[i].String()
	}
	return "(missing)"
}

func (r *runner) sysRead(idx int, sc *Syscall) outcome {
	s, n, detail, o, ok := r.ioArgs(sc, "read")
	if !ok {
		return o
	}
	if s.conn == 0 {
		return errOut("ENOTCONN")
	}
	buf := make([]byte, n)
	try := func() (outcome, time.Duration, bool) {
		if n == 0 {
			return outcome{}, r.now(), true
		}
		k, err := r.e.Receive(s.conn, buf)
		switch {
		case err == nil && k == 0:
			in, _ := r.e.Endpoint(s.conn)
			if in.State == fsm.SynSent || in.State == fsm.SynReceived || in.State >= fsm.Established {
				return outcome{}, 0, false
			}
			return errOut("ENOTCONN"), r.now(), true
		case errors.Is(err, fsm.ErrConnectionClosing):
			return outcome{ret: 0, detail: "end of file"}, r.now(), true
		case err != nil:
			if s.errReported || errors.Is(err, fsm.ErrConnectionDoesNotExist) {
				return outcome{ret: 0, detail: "end of file"}, r.now(), true
			}
			s.errReported = true
			return errOut(errnoOf(err, false)), r.now(), true
		}
		return outcome{ret: int64(k), detail: detail}, r.now(), true
	}
	if out, _, done := try(); done {
		return out
	}
	if s.nonblock {
		return errOut("EAGAIN")
	}
	return outcome{block: true, retry: try}
}

func (r *runner) sysShutdown(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	how, ok := argInt(sc, 1)
	if !ok || how < 0 || how > 2 {
		return errOut("EINVAL")
	}
	if s.conn == 0 {
		return errOut("ENOTCONN")
	}
	if how == symbols["SHUT_RD"] {
		return outcome{detail: "SHUT_RD has no effect on the engine"}
	}
	err := r.e.Shutdown(s.conn)
	switch {
	case err == nil, errors.Is(err, fsm.ErrConnectionClosing):
		return outcome{}
	}
	return errOut("ENOTCONN")
}

func (r *runner) sysClose(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	delete(r.socks, s.fd)
	var detail string
	switch {
	case s.listener != 0:
		_ = r.e.Close(s.listener)
	case s.conn != 0 && s.linger0:
		detail = "SO_LINGER 0: abort"
		_ = r.e.Abort(s.conn)
	case s.conn != 0:
		_ = r.e.Close(s.conn) // close(2) returns 0 whatever the connection's state
	}
	return outcome{detail: detail}
}

func (r *runner) sysFcntl(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	cmd, _ := argInt(sc, 1)
	switch cmd {
	case symbols["F_GETFL"]:
		v := symbols["O_RDWR"]
		if s.nonblock {
			v |= symbols["O_NONBLOCK"]
		}
		return outcome{ret: v}
	case symbols["F_SETFL"]:
		fl, ok := argInt(sc, 2)
		if !ok {
			return outcome{skip: "skipped: fcntl F_SETFL flags " + argText(sc, 2) + " are not a number"}
		}
		s.nonblock = fl&symbols["O_NONBLOCK"] != 0
		return outcome{}
	}
	return outcome{skip: "skipped: fcntl supports F_GETFL and F_SETFL only"}
}

// optName names a socket option argument for messages.
func optName(e *Expr) string {
	if e.Kind == ExprSymbol {
		return e.Name
	}
	return e.String()
}

func (r *runner) sysSetsockopt(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	if len(sc.Args) < 4 {
		return errOut("EINVAL")
	}
	name := optName(sc.Args[2])
	if note, ok := r.applied[idx]; ok {
		if r.cfgNote != "" {
			note += "; " + r.cfgNote
		}
		return outcome{detail: note}
	}
	switch name {
	case "SO_REUSEADDR", "SO_REUSEPORT", "SO_KEEPALIVE":
		return outcome{detail: name + " has no effect in tcpstated"}
	case "SO_RCVBUF", "SO_SNDBUF":
		return outcome{detail: "not judged: " + name + " after the first connection cannot change the engine's fixed configuration"}
	case "TCP_NODELAY":
		v, _ := evalInt(sc.Args[3])
		b := v != 0
		s.nodelay = &b
		return outcome{detail: "not judged: TCP_NODELAY after the first connection cannot change the engine's fixed configuration"}
	case "SO_LINGER":
		on, ok1 := structField(sc.Args[3], "onoff", "l_onoff")
		lg, ok2 := structField(sc.Args[3], "linger", "l_linger")
		if !ok1 || !ok2 {
			return outcome{skip: "skipped: SO_LINGER needs {onoff=N, linger=N}"}
		}
		onv, _ := evalInt(on)
		lgv, _ := evalInt(lg)
		s.linger0 = onv != 0 && lgv == 0
		if onv != 0 && lgv != 0 {
			return outcome{detail: "not judged: a non-zero linger time does not make close() wait in tcpstated"}
		}
		return outcome{}
	}
	return outcome{skip: "skipped: setsockopt " + name + " is not supported by tcpstated"}
}

func (r *runner) sysGetsockopt(idx int, sc *Syscall) outcome {
	s, o, ok := r.argFD(sc)
	if !ok {
		return o
	}
	if len(sc.Args) < 4 {
		return errOut("EINVAL")
	}
	name := optName(sc.Args[2])
	want := sc.Args[3]
	check := func(got int64, gotText string, judged bool) outcome {
		if want.Kind == ExprEllipsis {
			return outcome{detail: name + " " + gotText}
		}
		w, ok := evalInt(want)
		if !ok {
			return outcome{fail: fmt.Sprintf("cannot read the expected %s value %s", name, want)}
		}
		if w == got {
			return outcome{detail: name + " " + gotText}
		}
		msg := fmt.Sprintf("%s: expected %s, got %s", name, want, gotText)
		if !judged {
			return outcome{detail: "not judged: " + msg}
		}
		return outcome{fail: msg, detail: name + " " + gotText}
	}
	cfg := r.config()
	switch name {
	case "SO_ERROR":
		var n int64
		text := "0"
		if err := r.connErr(s); err != nil {
			s.errReported = true
			en := errnoOf(err, false)
			n, text = symbols[en], fmt.Sprintf("%d (%s)", symbols[en], en)
		}
		return check(n, text, true)
	case "SO_RCVBUF", "SO_SNDBUF":
		if cfg == nil {
			return outcome{detail: "not judged: the engine's configuration is not visible"}
		}
		v := int64(cfg.RecvBuffer)
		if name == "SO_SNDBUF" {
			v = int64(cfg.SendBuffer)
		}
		return check(v, fmt.Sprint(v), r.strict)
	case "TCP_NODELAY":
		var v int64
		switch {
		case s.nodelay != nil && *s.nodelay:
			v = 1
		case s.nodelay == nil && cfg != nil && cfg.NoNagle:
			v = 1
		}
		return check(v, fmt.Sprint(v), true)
	case "TCP_INFO":
		return r.tcpInfo(s, want)
	}
	return outcome{skip: "skipped: getsockopt " + name + " is not supported by tcpstated"}
}

// config returns the engine's configuration if it shows it.
func (r *runner) config() *fsm.Config {
	if c, ok := r.e.(interface{ Config() fsm.Config }); ok {
		cfg := c.Config()
		return &cfg
	}
	return nil
}

// tcpInfo compares a TCP_INFO struct literal with the endpoint's state.
func (r *runner) tcpInfo(s *sock, want *Expr) outcome {
	in := fsm.EndpointInfo{State: fsm.Closed}
	id := s.conn
	if s.listener != 0 {
		id = s.listener
	}
	known := false
	if id != 0 {
		in, known = r.e.Endpoint(id)
		if !known {
			in = fsm.EndpointInfo{State: fsm.Closed}
		}
	}
	state := linuxStates[in.State]
	if want.Kind != ExprStruct {
		return outcome{skip: "skipped: TCP_INFO needs a struct such as {tcpi_state=TCP_ESTABLISHED, ...}"}
	}
	var fails, notes []string
	for _, f := range want.Fields {
		if f.Name == "" {
			continue
		}
		w, ok := evalInt(f.Value)
		if !ok {
			fails = append(fails, fmt.Sprintf("%s: cannot evaluate %s", f.Name, f.Value))
			continue
		}
		var got int64
		var text string
		switch f.Name {
		case "tcpi_state":
			got, text = symbols[state], fmt.Sprintf("%s (RFC 9293 %s)", state, in.State)
			if w != got {
				wn := linuxStateName(w)
				if wn == "" {
					wn = fmt.Sprint(w)
				}
				msg := fmt.Sprintf("tcpi_state: expected %s, got %s", wn, text)
				if tr := r.lastTransition(id); tr != "" {
					msg += "; last transition: " + tr
				}
				fails = append(fails, msg)
			}
			continue
		case "tcpi_snd_mss":
			got = int64(in.SndMSS)
		case "tcpi_rcv_mss", "tcpi_advmss":
			got = int64(in.RcvMSS)
		case "tcpi_snd_wscale":
			got = int64(in.SndScale)
		case "tcpi_rcv_wscale":
			got = int64(in.RcvScale)
		case "tcpi_rto":
			got = int64(in.RTO / time.Microsecond)
		default:
			notes = append(notes, "not judged: "+f.Name+" is not supported")
			continue
		}
		text = fmt.Sprint(got)
		if w != got {
			fails = append(fails, fmt.Sprintf("%s: expected %d, got %s", f.Name, w, text))
		}
	}
	o := outcome{detail: "tcpi_state=" + state}
	if len(notes) > 0 {
		o.detail += "; " + strings.Join(notes, "; ")
	}
	o.fail = strings.Join(fails, "; ")
	return o
}

// lastTransition finds the most recent transition of an endpoint in the
// report so far, for failure messages.
func (r *runner) lastTransition(id fsm.EndpointID) string {
	if id == 0 {
		return ""
	}
	tag := fmt.Sprintf(" endpoint %d: ", id)
	for i := len(r.rep.Lines) - 1; i >= 0; i-- {
		ts := r.rep.Lines[i].Transitions
		for k := len(ts) - 1; k >= 0; k-- {
			if strings.Contains(ts[k], tag) {
				return ts[k] + fmt.Sprintf(" (line %d)", r.rep.Lines[i].Line)
			}
		}
	}
	return ""
}
