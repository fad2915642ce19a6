package enginetarget

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

func (t *Target) setsockopt(s *sock, c *target.Call) target.Result {
	if note, ok := t.opts.Applied[c.Index]; ok {
		if t.opts.ConfigNote != "" {
			note += "; " + t.opts.ConfigNote
		}
		return target.Result{Detail: note}
	}
	if res, ok := t.setKeepAlive(s, c); ok {
		return res
	}
	if res, ok := t.setFastOpen(s, c); ok {
		return res
	}
	switch c.Opt {
	case "SO_OOBINLINE":
		return t.setOOBInline(s, c)
	case "TCP_MD5SIG":
		return t.setMD5(c)
	case "SO_REUSEADDR", "SO_REUSEPORT":
		return target.Result{Detail: c.Opt + " has no effect in tcpstated"}
	case "SO_RCVBUF", "SO_SNDBUF":
		return target.Result{Detail: "not judged: " + c.Opt + " after the first connection cannot change the engine's fixed configuration"}
	case "TCP_NODELAY":
		b := c.Value != 0
		s.nodelay = &b
		return target.Result{Detail: "not judged: TCP_NODELAY after the first connection cannot change the engine's fixed configuration"}
	case "SO_LINGER":
		if c.Linger == nil {
			return target.Result{Skip: "skipped: SO_LINGER needs {onoff=N, linger=N}"}
		}
		s.linger0 = c.Linger.OnOff != 0 && c.Linger.Linger == 0
		if c.Linger.OnOff != 0 && c.Linger.Linger != 0 {
			return target.Result{Detail: "not judged: a non-zero linger time does not make close() wait in tcpstated"}
		}
		return target.Result{}
	}
	return target.Result{Skip: "skipped: setsockopt " + c.Opt + " is not supported by tcpstated"}
}

func (t *Target) getsockopt(s *sock, c *target.Call) target.Result {
	value := func(v int64, text string) target.Result {
		return target.Result{Value: &target.Value{Int: v, Text: text}}
	}
	cfg := t.config()
	switch c.Opt {
	case "SO_ERROR":
		if err := t.connErr(s); err != nil {
			s.errReported = true
			en := errnoOf(err, false)
			return value(sym[en], fmt.Sprintf("%d (%s)", sym[en], en))
		}
		return value(0, "0")
	case "SO_RCVBUF", "SO_SNDBUF":
		if cfg == nil {
			return target.Result{Detail: "not judged: the engine's configuration is not visible"}
		}
		v := int64(cfg.RecvBuffer)
		if c.Opt == "SO_SNDBUF" {
			v = int64(cfg.SendBuffer)
		}
		return value(v, fmt.Sprint(v))
	case "TCP_NODELAY":
		var v int64
		switch {
		case s.nodelay != nil && *s.nodelay:
			v = 1
		case s.nodelay == nil && cfg != nil && cfg.NoNagle:
			v = 1
		}
		return value(v, fmt.Sprint(v))
	case "TCP_INFO":
		return target.Result{Info: t.tcpInfo(s)}
	case "SO_OOBINLINE":
		return t.getOOBInline(s)
	}
	return target.Result{Skip: "skipped: getsockopt " + c.Opt + " is not supported by tcpstated"}
}

// tcpInfo is the tcp_info of a socket's endpoint, from the engine's
// state; a socket without one is TCP_CLOSE.
func (t *Target) tcpInfo(s *sock) *target.TCPInfo {
	in := fsm.EndpointInfo{State: fsm.Closed}
	id := s.conn
	if s.listener != 0 {
		id = s.listener
	}
	if id != 0 {
		var ok bool
		if in, ok = t.e.Endpoint(id); !ok {
			in = fsm.EndpointInfo{State: fsm.Closed}
		}
	}
	state, sndMSS, rcvMSS := in.State, in.SndMSS, in.RcvMSS
	if cfg := t.config(); cfg != nil {
		state, sndMSS, rcvMSS = cfg.LinuxInfo(in) // info_linux
	}
	text := "RFC 9293 " + in.State.String()
	if state != in.State {
		text += ", shown as " + linuxStates[state] + " (info_linux=1)"
	}
	return &target.TCPInfo{
		State:     linuxStates[state],
		StateText: text,
		Endpoint:  uint64(id),
		Fields: map[string]int64{
			"tcpi_snd_mss":    int64(sndMSS),
			"tcpi_rcv_mss":    int64(rcvMSS),
			"tcpi_advmss":     int64(in.RcvMSS),
			"tcpi_snd_wscale": int64(in.SndScale),
			"tcpi_rcv_wscale": int64(in.RcvScale),
			"tcpi_rto":        int64(in.RTO / time.Microsecond),
		},
	}
}

// md5Keyer is an Engine that takes TCP-MD5 keys (*fsm.Engine does).
type md5Keyer interface {
	SetMD5Key(peer netip.Addr, key []byte) error
}

// setMD5 is setsockopt TCP_MD5SIG as FreeBSD has it: a flag that turns on
// signatures for the socket, with the key from the security association
// (setkey), which a script gives as --tcp_md5_secret. The engine keys by
// peer address, so the key applies to every connection with the remote.
func (t *Target) setMD5(c *target.Call) target.Result {
	k, ok := t.e.(md5Keyer)
	switch {
	case !ok:
		return target.Result{Skip: "skipped: setsockopt TCP_MD5SIG: this engine takes no TCP-MD5 keys"}
	case t.opts.MD5Secret == "" || !t.opts.Remote.IsValid():
		return target.Result{Skip: "skipped: setsockopt TCP_MD5SIG needs --tcp_md5_secret for the key"}
	}
	key := []byte(t.opts.MD5Secret)
	if c.Value == 0 {
		key = nil
	}
	if err := k.SetMD5Key(t.opts.Remote, key); err != nil {
		return target.Result{Ret: -1, Errno: "EINVAL", Detail: err.Error()}
	}
	return target.Result{Detail: "TCP-MD5 (RFC 2385) key --tcp_md5_secret set for " + t.opts.Remote.String()}
}
