package enginetarget

import (
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// KeepAliver is the optional capability of an Engine with per-endpoint
// keep-alive settings (RFC 9293 §3.8.4); *fsm.Engine has it.
type KeepAliver interface {
	KeepAlive(id fsm.EndpointID) (fsm.KeepAlive, error)
	SetKeepAlive(id fsm.EndpointID, ka fsm.KeepAlive) error
}

// keepAliveOpts are the keep-alive socket options a script set on a
// socket: applied to its endpoint once it has one, and again whenever one
// changes. Zero fields keep the engine's value.
type keepAliveOpts struct {
	enabled    *bool         // SO_KEEPALIVE
	idle, intv time.Duration // TCP_KEEPIDLE, TCP_KEEPINTVL (seconds in the call)
	count      int           // TCP_KEEPCNT
	init       time.Duration // TCP_KEEPINIT (FreeBSD, seconds)
}

// setKeepAlive records one keep-alive option; ok is false for an option
// that is not one.
func (t *Target) setKeepAlive(s *sock, c *target.Call) (target.Result, bool) {
	o := &s.ka
	switch c.Opt {
	case "SO_KEEPALIVE":
		on := c.Value != 0
		o.enabled = &on
	case "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPINIT":
		if c.Value < 0 || c.Value > 1<<31/1000 {
			return target.Err("EINVAL"), true
		}
		d := time.Duration(c.Value) * time.Second
		switch c.Opt {
		case "TCP_KEEPIDLE":
			o.idle = d
		case "TCP_KEEPINTVL":
			o.intv = d
		default:
			o.init = d
		}
	case "TCP_KEEPCNT":
		if c.Value < 1 || c.Value > 1<<15 {
			return target.Err("EINVAL"), true
		}
		o.count = int(c.Value)
	default:
		return target.Result{}, false
	}
	if err := t.applyKeepAlive(s); err != nil {
		return target.Result{Skip: "skipped: " + c.Opt + ": " + err.Error()}, true
	}
	return target.Result{}, true
}

// applyKeepAlive gives the socket's endpoint the options set on it; a
// socket without an endpoint yet keeps them for its listen or connect.
func (t *Target) applyKeepAlive(s *sock) error {
	t.applyOOBInline(s) // oob.go: SO_OOBINLINE is applied at the same points
	if s.ka == (keepAliveOpts{}) {
		return nil
	}
	ka, ok := t.e.(KeepAliver)
	if !ok {
		return errNoKeepAlive
	}
	id := s.conn
	if id == 0 {
		id = s.listener
	}
	if id == 0 {
		return nil
	}
	cur, err := ka.KeepAlive(id)
	if err != nil {
		return nil // the endpoint is gone: nothing to keep alive
	}
	o := s.ka
	if o.enabled != nil {
		cur.Enabled = *o.enabled
	}
	if o.idle > 0 {
		cur.Idle = o.idle
	}
	if o.intv > 0 {
		cur.Interval = o.intv
	}
	if o.count > 0 {
		cur.Count = o.count
	}
	if o.init > 0 {
		cur.Init = o.init
	}
	return ka.SetKeepAlive(id, cur)
}

type keepAliveError string

func (e keepAliveError) Error() string { return string(e) }

const errNoKeepAlive = keepAliveError("this engine has no keep-alive settings")
