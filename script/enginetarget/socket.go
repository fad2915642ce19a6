package enginetarget

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// sock is a socket the script opened. The target plays the kernel's
// socket layer: file descriptors, blocking, and errors reported once, as
// Linux does; the engine holds the TCP state.
type sock struct {
	fd          int
	nonblock    bool
	port        uint16 // bound port; 0 if not bound
	listener    fsm.EndpointID
	conn        fsm.EndpointID
	linger0     bool // SO_LINGER {onoff=1, linger=0}: close sends RST
	errReported bool // the connection's error was returned once already
	nodelay     *bool
	connected   bool // a connect() call has reported the connection established
	ka          keepAliveOpts
	fastOpen    bool           // TCP_FASTOPEN (or TCP_FASTOPEN_CONNECT) set (fastopen.go)
	foConnect   bool           // TCP_FASTOPEN_CONNECT set: connect waits for the first write
	foDeferred  netip.AddrPort // the remote of a connect the first write makes (fastopen.go)
	foLocal     netip.AddrPort
	oobInline   *bool // SO_OOBINLINE set (oob.go)
	rdShut      bool  // shutdown(SHUT_RD or SHUT_RDWR) under shutrd_eof: an empty queue reads as end of file
}

// retry tries a blocked call again: its result, the time it returned, and
// whether it has.
type retry = func() (target.Result, time.Duration, bool)

var sym = target.Symbols

var calls = map[string]func(t *Target, s *sock, c *target.Call) target.Result{
	"bind": (*Target).bind, "listen": (*Target).listen,
	"accept": (*Target).accept, "accept4": (*Target).accept, "connect": (*Target).connect,
	"write": (*Target).write, "send": (*Target).write, "sendto": (*Target).write,
	"read": (*Target).read, "recv": (*Target).read, "recvfrom": (*Target).read,
	"shutdown": (*Target).shutdown, "close": (*Target).close, "fcntl": (*Target).fcntl,
	"setsockopt": (*Target).setsockopt, "getsockopt": (*Target).getsockopt,
}

// Call executes a socket call over the engine.
func (t *Target) Call(c *target.Call) target.Result {
	defer t.collect()
	if c.Name == "socket" {
		return t.socket(c)
	}
	h := calls[c.Name]
	if h == nil {
		return target.Result{Skip: fmt.Sprintf("skipped: system call %s is not supported by tcpstated", c.Name)}
	}
	s := t.socks[c.FD]
	if s == nil {
		return target.Err("EBADF")
	}
	return h(t, s, c)
}

// block is the result of a call that would block: EAGAIN on a
// non-blocking socket, else Blocked with try kept for Pending.
func (t *Target) block(s *sock, try retry) target.Result {
	if s.nonblock {
		return target.Err("EAGAIN")
	}
	t.pending = try
	return target.Result{Blocked: true}
}

// newFD is the lowest free descriptor from 3.
func (t *Target) newFD() int {
	fd := 3
	for t.socks[fd] != nil {
		fd++
	}
	return fd
}

// connErr is the error a closed connection reports, once (Linux clears
// sk_err when it returns it).
func (t *Target) connErr(s *sock) error {
	if s.conn == 0 {
		return nil
	}
	in, ok := t.e.Endpoint(s.conn)
	if !ok || in.State != fsm.Closed || in.Err == nil || s.errReported {
		return nil
	}
	return in.Err
}

func (t *Target) socket(c *target.Call) target.Result {
	s := &sock{fd: t.newFD(), nonblock: c.Type&sym["O_NONBLOCK"] != 0} // SOCK_NONBLOCK
	t.socks[s.fd] = s
	return target.Result{Ret: int64(s.fd)}
}

func (t *Target) bind(s *sock, c *target.Call) target.Result {
	if s.port != 0 {
		return target.Err("EINVAL")
	}
	// The socket layer's rule, as Linux's inet_csk_get_port (and
	// FreeBSD's in_pcbbind): a port a listener holds is in use, whatever
	// SO_REUSEADDR says.
	for _, o := range t.socks {
		if o != s && o.listener != 0 && o.port == c.Local.Port() {
			return target.Err("EADDRINUSE")
		}
	}
	s.port = c.Local.Port()
	return target.Result{}
}

func (t *Target) listen(s *sock, c *target.Call) target.Result {
	if s.conn != 0 {
		return target.Err("EINVAL")
	}
	if s.listener != 0 {
		return target.Result{Detail: "already listening: no effect"}
	}
	backlog := c.Backlog
	if backlog < 1 {
		backlog = 1 // the engine reads 0 as its default; Linux's listen(fd, 0) queues one
	}
	if s.port == 0 {
		s.port = c.Local.Port()
	}
	local := netip.AddrPortFrom(c.Local.Addr(), s.port)
	id, err := t.e.Listen(local, int(min(backlog, 1<<20)))
	if err != nil {
		return target.Err(errnoOf(err, false))
	}
	s.listener = id
	if fo, ok := t.e.(FastOpener); ok && s.fastOpen {
		_ = fo.SetListenerFastOpen(id, true) // TCP_FASTOPEN set before listen
	}
	_ = t.applyKeepAlive(s) // an accepted connection starts with the listener's
	return target.Result{Local: local, Detail: fmt.Sprintf("endpoint %d, accept queue %d", id, backlog)}
}

func (t *Target) accept(s *sock, c *target.Call) target.Result {
	if s.listener == 0 {
		return target.Err("EINVAL")
	}
	try := func() (target.Result, time.Duration, bool) {
		id, err := t.e.Accept(s.listener)
		if errors.Is(err, fsm.ErrNoConnection) {
			return target.Result{}, 0, false
		}
		if err != nil {
			return target.Err(errnoOf(err, false)), t.e.Now(), true
		}
		ns := &sock{fd: t.newFD(), conn: id, port: s.port}
		at := t.e.Now()
		if when, ok := t.estAt[id]; ok {
			at = when
		}
		t.socks[ns.fd] = ns
		return target.Result{Ret: int64(ns.fd), Detail: fmt.Sprintf("endpoint %d", id)}, at, true
	}
	if res, _, done := try(); done {
		return res
	}
	return t.block(s, try)
}

func (t *Target) connect(s *sock, c *target.Call) target.Result {
	if s.listener != 0 {
		return target.Err("EISCONN")
	}
	if s.conn != 0 {
		// connect() again on a non-blocking socket: still in progress,
		// connected, or the error that ended the attempt.
		in, _ := t.e.Endpoint(s.conn)
		switch {
		case in.State == fsm.SynSent || in.State == fsm.SynReceived:
			return target.Err("EALREADY")
		case in.State == fsm.Closed:
			if err := t.connErr(s); err != nil {
				s.errReported = true
				return target.Err(errnoOf(err, false))
			}
			return target.Err("ECONNABORTED")
		case !s.connected:
			s.connected = true
			return target.Result{}
		}
		return target.Err("EISCONN")
	}
	if s.foDeferred.IsValid() {
		return target.Err("EISCONN")
	}
	port := s.port
	if port == 0 {
		port = t.nextPort
		t.nextPort++
	}
	local := netip.AddrPortFrom(c.Local.Addr(), port)
	if res, ok := t.deferConnect(s, local, c.Remote); ok {
		return res
	}
	id, err := t.e.Connect(local, c.Remote)
	if err != nil {
		return target.Err(errnoOf(err, false))
	}
	s.conn, s.port = id, port
	_ = t.applyKeepAlive(s)
	if s.nonblock {
		return target.Result{Ret: -1, Errno: "EINPROGRESS", Local: local}
	}
	t.pending = func() (target.Result, time.Duration, bool) {
		in, ok := t.e.Endpoint(id)
		switch {
		case !ok:
			return target.Err("ECONNABORTED"), t.e.Now(), true
		case in.State == fsm.Closed:
			s.errReported = true
			at := t.e.Now()
			if when, ok := t.closedAt[id]; ok {
				at = when
			}
			return target.Err(errnoOf(in.Err, false)), at, true
		case in.State >= fsm.Established:
			s.connected = true
			at := t.e.Now()
			if when, ok := t.estAt[id]; ok {
				at = when
			}
			return target.Result{}, at, true
		}
		return target.Result{}, 0, false
	}
	return target.Result{Blocked: true, Local: local}
}

// ignoredFlags notes send/recv flags the engine does not honour.
func ignoredFlags(c *target.Call) string {
	if c.FlagsText != "" {
		return "flags " + c.FlagsText + " ignored"
	}
	return ""
}

func (t *Target) write(s *sock, c *target.Call) target.Result {
	if s.conn == 0 && s.foDeferred.IsValid() {
		return t.deferredWrite(s, c)
	}
	if s.conn == 0 && s.listener == 0 && c.Name == "sendto" && c.Remote.IsValid() {
		return t.sendtoConnect(s, c)
	}
	if s.conn == 0 {
		return target.Err("EPIPE")
	}
	if err := t.connErr(s); err != nil {
		s.errReported = true
		return target.Err(errnoOf(err, true))
	}
	data := make([]byte, c.Len)
	for i := range data {
		data[i] = byte('A' + i%26)
	}
	detail := ignoredFlags(c)
	send := t.e.Send
	if u := t.sendUrgent(); u != nil && c.Flags&msgOOB != 0 {
		send, detail = u, "MSG_OOB: urgent data, SND.UP after it (oob.go)"
	}
	try := func() (target.Result, time.Duration, bool) {
		k, err := send(s.conn, data)
		switch {
		case errors.Is(err, fsm.ErrInsufficientResources):
			return target.Result{}, 0, false
		case err != nil:
			if s.errReported {
				return target.Err("EPIPE"), t.e.Now(), true
			}
			s.errReported = true
			return target.Err(errnoOf(err, true)), t.e.Now(), true
		}
		return target.Result{Ret: int64(k), Detail: detail}, t.e.Now(), true
	}
	if res, _, done := try(); done {
		return res
	}
	return t.block(s, try)
}

// recvFlags are the recv flags the engine target honours.
var (
	msgOOB      = sym["MSG_OOB"]
	msgPeek     = sym["MSG_PEEK"]
	msgDontwait = sym["MSG_DONTWAIT"]
	msgWaitall  = sym["MSG_WAITALL"]
)

// Peeker is the optional capability of an Engine that can read without
// consuming (recv with MSG_PEEK); *fsm.Engine has it.
type Peeker interface {
	Peek(id fsm.EndpointID, buf []byte) (int, error)
}

func (t *Target) read(s *sock, c *target.Call) target.Result {
	if s.conn == 0 {
		return target.Err("ENOTCONN")
	}
	n := c.Len
	flags := c.Flags
	if flags&msgOOB != 0 {
		return t.readOOB(s, c) // oob.go
	}
	get := t.e.Receive
	if flags&msgPeek != 0 {
		p, ok := t.e.(Peeker)
		if !ok {
			return target.Result{Skip: "skipped: MSG_PEEK: this engine cannot read without consuming"}
		}
		get = p.Peek
	}
	var detail string
	if rest := flags &^ (msgPeek | msgDontwait | msgWaitall); rest != 0 {
		detail = ignoredFlags(c)
	}
	buf := make([]byte, n)
	try := func() (target.Result, time.Duration, bool) {
		if n == 0 {
			return target.Result{}, t.e.Now(), true
		}
		in, _ := t.e.Endpoint(s.conn)
		// MSG_WAITALL: wait for the whole length unless the stream ends
		// or fails first (POSIX recv; Linux tcp_recvmsg).
		if flags&msgWaitall != 0 && in.Readable < n && !in.FinReceived && in.State != fsm.Closed {
			return target.Result{}, 0, false
		}
		k, err := get(s.conn, buf)
		switch {
		case err == nil && k == 0:
			if s.rdShut {
				return target.Result{Detail: "end of file: the reading side was shut down (shutrd_eof, as Linux)"}, t.e.Now(), true
			}
			if in.State == fsm.SynSent || in.State == fsm.SynReceived || in.State >= fsm.Established {
				return target.Result{}, 0, false
			}
			return target.Err("ENOTCONN"), t.e.Now(), true
		case errors.Is(err, fsm.ErrConnectionClosing):
			return target.Result{Detail: "end of file"}, t.e.Now(), true
		case err != nil:
			if s.errReported || errors.Is(err, fsm.ErrConnectionDoesNotExist) {
				return target.Result{Detail: "end of file"}, t.e.Now(), true
			}
			s.errReported = true
			return target.Err(errnoOf(err, false)), t.e.Now(), true
		}
		return target.Result{Ret: int64(k), Detail: detail}, t.e.Now(), true
	}
	if res, _, done := try(); done {
		return res
	}
	if flags&msgDontwait != 0 {
		return target.Err("EAGAIN") // MSG_DONTWAIT: this call only, as if O_NONBLOCK
	}
	return t.block(s, try)
}

func (t *Target) shutdown(s *sock, c *target.Call) target.Result {
	if s.conn == 0 {
		return target.Err("ENOTCONN")
	}
	if c.How == sym["SHUT_RD"] || c.How == sym["SHUT_RDWR"] {
		if cfg := t.config(); cfg != nil && cfg.ShutRdEOF {
			s.rdShut = true
		}
	}
	if c.How == sym["SHUT_RD"] {
		if s.rdShut {
			return target.Result{Detail: "SHUT_RD: reads return what is queued, then end of file (shutrd_eof)"}
		}
		return target.Result{Detail: "SHUT_RD has no effect on the engine (shutrd_eof=0)"}
	}
	err := t.e.Shutdown(s.conn)
	switch {
	case err == nil, errors.Is(err, fsm.ErrConnectionClosing):
		return target.Result{}
	}
	return target.Err("ENOTCONN")
}

func (t *Target) close(s *sock, c *target.Call) target.Result {
	delete(t.socks, s.fd)
	var detail string
	switch {
	case s.listener != 0:
		_ = t.e.Close(s.listener)
	case s.conn != 0 && s.linger0:
		detail = "SO_LINGER 0: abort"
		_ = t.e.Abort(s.conn)
	case s.conn != 0:
		_ = t.e.Close(s.conn) // close(2) returns 0 whatever the connection's state
	}
	return target.Result{Detail: detail}
}

func (t *Target) fcntl(s *sock, c *target.Call) target.Result {
	switch c.Cmd {
	case sym["F_GETFL"]:
		v := sym["O_RDWR"]
		if s.nonblock {
			v |= sym["O_NONBLOCK"]
		}
		return target.Result{Ret: v}
	case sym["F_SETFL"]:
		s.nonblock = c.Arg&sym["O_NONBLOCK"] != 0
		return target.Result{}
	}
	return target.Result{Skip: "skipped: fcntl supports F_GETFL and F_SETFL only"}
}
