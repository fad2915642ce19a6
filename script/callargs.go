package script

import (
	"fmt"
	"net/netip"

	"github.com/tcpstated/tcpstated/script/target"
)

// argsFunc reads a system call's arguments into c. If the runner can
// answer the call itself (a descriptor the script does not hold, an
// argument it cannot read), it returns that outcome and true; the target
// is not called.
type argsFunc func(r *runner, sc *Syscall, c *target.Call) (outcome, bool)

var callArgs map[string]argsFunc

func init() {
	callArgs = map[string]argsFunc{
		"socket": (*runner).socketArgs, "bind": (*runner).bindArgs, "listen": (*runner).listenArgs,
		"accept": (*runner).fdArgs, "accept4": (*runner).fdArgs, "connect": (*runner).connectArgs,
		"write": (*runner).writeArgs, "send": (*runner).writeArgs, "sendto": (*runner).writeArgs,
		"read": (*runner).readArgs, "recv": (*runner).readArgs, "recvfrom": (*runner).readArgs,
		"shutdown": (*runner).shutdownArgs, "close": (*runner).fdArgs, "fcntl": (*runner).fcntlArgs,
		"setsockopt": (*runner).setsockoptArgs, "getsockopt": (*runner).getsockoptArgs,
		"poll": (*runner).pollArgs,
	}
}

// result turns what the target returned into the call's outcome, and
// keeps what the runner must know: the descriptors the script holds, the
// listening port, and a connect's flow.
func (r *runner) result(sc *Syscall, c *target.Call, res target.Result) outcome {
	out := outcome{ret: res.Ret, errno: res.Errno, block: res.Blocked, skip: res.Skip, detail: res.Detail, fail: res.Error}
	if res.Skip != "" || res.Error != "" {
		return out
	}
	switch c.Name {
	case "socket", "accept", "accept4":
		if res.Errno == "" && !res.Blocked {
			r.open[int(res.Ret)] = true
		}
	case "close":
		delete(r.open, c.FD)
		r.socketClosed(c.FD)
	case "listen":
		if res.Local.IsValid() {
			r.listenPort = res.Local.Port()
		}
	case "connect", "sendto":
		if res.Local.IsValid() {
			r.newActiveFlow(c.FD, res.Local, c.Remote)
		}
	case "getsockopt":
		if res.Errno == "" {
			out = r.sockoptResult(c, sc.Args[3], res)
			out.ret = res.Ret
		}
	case "ioctl": // SIOCATMARK's [v] (ioctl.go)
		if res.Errno == "" && len(sc.Args) > 2 {
			out = r.sockoptResult(c, sc.Args[2], res)
			out.ret = res.Ret
		}
	case "poll":
		if res.Errno == "" && res.Poll != nil {
			out.fail = comparePoll(sc, res.Poll)
		}
	}
	return out
}

// argFD reads the fd argument: a descriptor the script holds.
func (r *runner) argFD(sc *Syscall, c *target.Call) (outcome, bool) {
	if len(sc.Args) == 0 {
		return errOut("EBADF"), true
	}
	fd, ok := evalInt(sc.Args[0])
	if !ok {
		return outcome{skip: fmt.Sprintf("skipped: %s's first argument %s is not a file descriptor number", sc.Name, sc.Args[0])}, true
	}
	if !r.open[int(fd)] {
		return errOut("EBADF"), true
	}
	c.FD = int(fd)
	return outcome{}, false
}

func (r *runner) fdArgs(sc *Syscall, c *target.Call) (outcome, bool) { return r.argFD(sc, c) }

func (r *runner) socketArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if t, ok := argInt(sc, 1); ok && t&0xf != symbols["SOCK_STREAM"] {
		return outcome{skip: "skipped: only SOCK_STREAM sockets are supported"}, true
	}
	c.Type, _ = argInt(sc, 1)
	return outcome{}, false
}

func (r *runner) bindArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	port := r.h.bindPort
	if len(sc.Args) > 1 {
		if p, ok := portOf(sc.Args[1]); ok {
			port = p
		}
	}
	c.Local = netip.AddrPortFrom(r.h.localIP, port)
	return outcome{}, false
}

func (r *runner) listenArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	c.Backlog, _ = argInt(sc, 1)
	c.Local = netip.AddrPortFrom(r.h.localIP, r.h.bindPort)
	return outcome{}, false
}

func (r *runner) connectArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	c.Remote = netip.AddrPortFrom(r.h.remoteIP, r.h.connectPort)
	if len(sc.Args) > 1 {
		if p, ok := portOf(sc.Args[1]); ok {
			c.Remote = netip.AddrPortFrom(r.h.remoteIP, p)
		}
	}
	c.Local = netip.AddrPortFrom(r.h.localIP, 0)
	return outcome{}, false
}

// ioArgs reads the arguments write/send and read/recv share: the socket,
// the length, and send/recv flags (plain is the call without flags).
func (r *runner) ioArgs(sc *Syscall, c *target.Call, plain string) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	n, ok := dataLen(sc)
	if !ok {
		return outcome{skip: fmt.Sprintf("skipped: %s's length %s must be a number up to 1 MiB", sc.Name, argText(sc, 2))}, true
	}
	c.Len = n
	if sc.Name != plain && len(sc.Args) > 3 {
		fl, ok := argInt(sc, 3)
		if !ok || fl != 0 {
			c.FlagsText = argText(sc, 3)
		}
		c.Flags = fl
	}
	return outcome{}, false
}

func (r *runner) writeArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if sc.Name == "sendto" {
		// sendto on an unconnected socket connects (TCP Fast Open): the
		// address is the script's remote end, as connect's.
		c.Remote = netip.AddrPortFrom(r.h.remoteIP, r.h.connectPort)
		c.Local = netip.AddrPortFrom(r.h.localIP, 0)
	}
	return r.ioArgs(sc, c, "write")
}
func (r *runner) readArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	return r.ioArgs(sc, c, "read")
}

func (r *runner) shutdownArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	how, ok := argInt(sc, 1)
	if !ok || how < 0 || how > 2 {
		return errOut("EINVAL"), true
	}
	c.How = how
	return outcome{}, false
}

func (r *runner) fcntlArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	c.Cmd, _ = argInt(sc, 1)
	if c.Cmd == symbols["F_SETFL"] {
		fl, ok := argInt(sc, 2)
		if !ok {
			return outcome{skip: "skipped: fcntl F_SETFL flags " + argText(sc, 2) + " are not a number"}, true
		}
		c.Arg = fl
	}
	return outcome{}, false
}

// sockoptArgs reads what setsockopt and getsockopt share: the socket,
// the level and the option's name.
func (r *runner) sockoptArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.argFD(sc, c); done {
		return o, done
	}
	if len(sc.Args) < 4 {
		return errOut("EINVAL"), true
	}
	c.Level, _ = evalInt(sc.Args[1])
	c.Opt = optName(sc.Args[2])
	return outcome{}, false
}

func (r *runner) setsockoptArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.sockoptArgs(sc, c); done {
		return o, done
	}
	c.Value, _ = evalInt(sc.Args[3])
	if c.Opt == "SO_LINGER" {
		on, ok1 := structField(sc.Args[3], "onoff", "l_onoff")
		lg, ok2 := structField(sc.Args[3], "linger", "l_linger")
		if ok1 && ok2 {
			c.Linger = &target.Linger{}
			c.Linger.OnOff, _ = evalInt(on)
			c.Linger.Linger, _ = evalInt(lg)
		}
	}
	return outcome{}, false
}

func (r *runner) getsockoptArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if o, done := r.sockoptArgs(sc, c); done {
		return o, done
	}
	if c.Opt == "TCP_INFO" && sc.Args[3].Kind != ExprStruct {
		return outcome{skip: "skipped: TCP_INFO needs a struct such as {tcpi_state=TCP_ESTABLISHED, ...}"}, true
	}
	return outcome{}, false
}

// pollArgs reads poll([{fd=N, events=E, revents=R}, ...], nfds, timeout).
func (r *runner) pollArgs(sc *Syscall, c *target.Call) (outcome, bool) {
	if len(sc.Args) > 0 && sc.Args[0].Kind == ExprArray {
		for _, e := range sc.Args[0].Elems {
			var p target.PollFD
			if v, ok := structField(e, "fd"); ok {
				fd, _ := evalInt(v)
				p.FD = int(fd)
			}
			if v, ok := structField(e, "events"); ok {
				p.Events, _ = evalInt(v)
			}
			c.Poll = append(c.Poll, p)
		}
	}
	c.Timeout, _ = argInt(sc, 2)
	return outcome{}, false
}

// comparePoll checks the revents a target returned against the script's.
func comparePoll(sc *Syscall, got []target.PollFD) string {
	if len(sc.Args) == 0 || sc.Args[0].Kind != ExprArray {
		return ""
	}
	for i, e := range sc.Args[0].Elems {
		v, ok := structField(e, "revents")
		if !ok {
			continue
		}
		w, ok := evalInt(v)
		switch {
		case !ok:
			return fmt.Sprintf("poll: cannot evaluate revents %s", v)
		case i >= len(got):
			return fmt.Sprintf("poll: entry %d: no revents returned", i)
		case got[i].Revents != w:
			return fmt.Sprintf("poll: fd %d revents: expected %s, got %#x", got[i].FD, v, got[i].Revents)
		}
	}
	return ""
}
