package enginetarget

import (
	"errors"
	"fmt"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// Urgent data as BSD sockets show it (fsm/oob.go, switch oob_inline):
// recv(MSG_OOB) reads the urgent octet held out of band, send(MSG_OOB)
// sends urgent data, setsockopt(SO_OOBINLINE) keeps it in line for one
// socket, ioctl(SIOCATMARK) says whether the next octet is at the mark.

// Urgenter is the optional capability of an Engine with urgent data out
// of band; *fsm.Engine has it.
type Urgenter interface {
	ReceiveUrgent(id fsm.EndpointID, peek bool) (byte, error)
	SendUrgent(id fsm.EndpointID, data []byte) (int, error)
	AtMark(id fsm.EndpointID) (bool, error)
	SockOpts(id fsm.EndpointID) (fsm.SockOpts, error)
	SetSockOpts(id fsm.EndpointID, o fsm.SockOpts) error
}

var _ Urgenter = (*fsm.Engine)(nil)

func init() {
	calls["ioctl"] = (*Target).ioctl
}

// readOOB is recv(fd, ..., n, MSG_OOB): one octet, never blocking. EINVAL
// when none is held out of band (none came, it was read, the reader
// passed it, or SO_OOBINLINE), EAGAIN before it arrives, as FreeBSD's
// tcp_usr_rcvoob and Linux's tcp_recv_urg answer.
func (t *Target) readOOB(s *sock, c *target.Call) target.Result {
	u, ok := t.e.(Urgenter)
	if !ok {
		return target.Result{Skip: "skipped: recv with MSG_OOB: this engine has no urgent data out of band"}
	}
	b, err := u.ReceiveUrgent(s.conn, c.Flags&msgPeek != 0)
	switch {
	case errors.Is(err, fsm.ErrNoUrgent):
		return target.Result{Ret: -1, Errno: "EINVAL", Detail: "no urgent octet out of band (oob_inline, SO_OOBINLINE)"}
	case errors.Is(err, fsm.ErrUrgentNotYet):
		return target.Err("EAGAIN")
	case err != nil:
		return target.Err(errnoOf(err, false))
	case c.Len == 0:
		return target.Result{}
	}
	return target.Result{Ret: 1, Detail: fmt.Sprintf("urgent octet %q out of band", b)}
}

// sendUrgent is the send of send(fd, ..., MSG_OOB), or nil when the
// engine has none.
func (t *Target) sendUrgent() func(fsm.EndpointID, []byte) (int, error) {
	if u, ok := t.e.(Urgenter); ok {
		return u.SendUrgent
	}
	return nil
}

// setOOBInline is setsockopt(SO_OOBINLINE): applied to the socket's
// endpoint now, or kept for its listen or connect.
func (t *Target) setOOBInline(s *sock, c *target.Call) target.Result {
	if _, ok := t.e.(Urgenter); !ok {
		return target.Result{Skip: "skipped: setsockopt SO_OOBINLINE: this engine has no urgent data out of band"}
	}
	on := c.Value != 0
	s.oobInline = &on
	t.applyOOBInline(s)
	return target.Result{}
}

// applyOOBInline gives the socket's endpoint its SO_OOBINLINE, if set.
func (t *Target) applyOOBInline(s *sock) {
	u, ok := t.e.(Urgenter)
	if !ok || s.oobInline == nil {
		return
	}
	id := s.conn
	if id == 0 {
		id = s.listener
	}
	if id == 0 {
		return
	}
	if o, err := u.SockOpts(id); err == nil && o.OOBInline != *s.oobInline {
		o.OOBInline = *s.oobInline
		_ = u.SetSockOpts(id, o)
	}
}

// getOOBInline is getsockopt(SO_OOBINLINE).
func (t *Target) getOOBInline(s *sock) target.Result {
	u, ok := t.e.(Urgenter)
	id := s.conn
	if id == 0 {
		id = s.listener
	}
	var v int64
	switch {
	case s.oobInline != nil:
		if *s.oobInline {
			v = 1
		}
	case ok && id != 0:
		if o, err := u.SockOpts(id); err == nil && o.OOBInline {
			v = 1
		}
	case !ok:
		return target.Result{Skip: "skipped: getsockopt SO_OOBINLINE: this engine has no urgent data out of band"}
	default:
		if cfg := t.config(); cfg != nil && !cfg.OOBNoInline {
			v = 1
		}
	}
	return target.Result{Value: &target.Value{Int: v, Text: fmt.Sprint(v)}}
}

// ioctl is ioctl(fd, SIOCATMARK, [v]): 1 when the next octet read is the
// last urgent octet (or, out of band, follows its place).
func (t *Target) ioctl(s *sock, c *target.Call) target.Result {
	if c.Opt != "SIOCATMARK" {
		return target.Result{Skip: "skipped: ioctl " + c.Opt + " is not supported by tcpstated"}
	}
	u, ok := t.e.(Urgenter)
	if !ok {
		return target.Result{Skip: "skipped: ioctl SIOCATMARK: this engine has no urgent data"}
	}
	var v int64
	if s.conn != 0 {
		if at, err := u.AtMark(s.conn); err == nil && at {
			v = 1
		}
	}
	return target.Result{Value: &target.Value{Int: v, Text: fmt.Sprint(v)}}
}
