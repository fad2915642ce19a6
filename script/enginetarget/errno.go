package enginetarget

import (
	"errors"

	"github.com/tcpstated/tcpstated/fsm"
)

// errnoOf maps an engine error to the errno Linux returns.
func errnoOf(err error, write bool) string {
	switch {
	case errors.Is(err, fsm.ErrConnectionReset):
		return "ECONNRESET"
	case errors.Is(err, fsm.ErrConnectionRefused):
		return "ECONNREFUSED"
	case errors.Is(err, fsm.ErrHostUnreachable):
		return "EHOSTUNREACH"
	case errors.Is(err, fsm.ErrNetUnreachable):
		return "ENETUNREACH"
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

// linuxStates maps RFC 9293 states to Linux's TCP_* names (tcp_states.h).
var linuxStates = [...]string{
	fsm.Closed:      "TCP_CLOSE",
	fsm.Listen:      "TCP_LISTEN",
	fsm.SynSent:     "TCP_SYN_SENT",
	fsm.SynReceived: "TCP_SYN_RECV",
	fsm.Established: "TCP_ESTABLISHED",
	fsm.FinWait1:    "TCP_FIN_WAIT1",
	fsm.FinWait2:    "TCP_FIN_WAIT2",
	fsm.CloseWait:   "TCP_CLOSE_WAIT",
	fsm.Closing:     "TCP_CLOSING",
	fsm.LastAck:     "TCP_LAST_ACK",
	fsm.TimeWait:    "TCP_TIME_WAIT",
}
