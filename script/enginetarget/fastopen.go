package enginetarget

import (
	"fmt"
	"net/netip"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/target"
)

// FastOpener is the optional capability of an Engine that does TCP Fast
// Open (RFC 7413); *fsm.Engine has it.
type FastOpener interface {
	ConnectFastOpen(local, remote netip.AddrPort, data []byte) (fsm.EndpointID, int, error)
	SetListenerFastOpen(id fsm.EndpointID, on bool) error
}

var _ FastOpener = (*fsm.Engine)(nil)

var msgFastOpen = sym["MSG_FASTOPEN"]

// setFastOpen handles TCP_FASTOPEN and TCP_FASTOPEN_CONNECT: on a
// listener (or a socket that will listen) it turns the server role on;
// on another socket it makes sendto, or connect and a first write,
// an open with data.
func (t *Target) setFastOpen(s *sock, c *target.Call) (target.Result, bool) {
	if c.Opt != "TCP_FASTOPEN" && c.Opt != "TCP_FASTOPEN_CONNECT" {
		return target.Result{}, false
	}
	fo, ok := t.e.(FastOpener)
	if !ok {
		return target.Result{Skip: "skipped: " + c.Opt + ": this engine does not do TCP Fast Open"}, true
	}
	s.fastOpen = c.Value != 0
	if c.Opt == "TCP_FASTOPEN_CONNECT" {
		s.foConnect = s.fastOpen
	}
	if s.listener != 0 {
		if err := fo.SetListenerFastOpen(s.listener, s.fastOpen); err != nil {
			return target.Err(errnoOf(err, false)), true
		}
		return target.Result{Detail: "TCP Fast Open server role on the listener"}, true
	}
	return target.Result{Detail: "TCP Fast Open for this socket's open"}, true
}

// deferConnect is connect on a TCP_FASTOPEN_CONNECT socket (Linux): it
// returns at once without a SYN; the first write opens the connection
// with its data.
func (t *Target) deferConnect(s *sock, local, remote netip.AddrPort) (target.Result, bool) {
	if !s.foConnect {
		return target.Result{}, false
	}
	if _, ok := t.e.(FastOpener); !ok {
		return target.Result{}, false
	}
	s.foDeferred, s.foLocal, s.port = remote, local, local.Port()
	return target.Result{Local: local, Detail: "TCP_FASTOPEN_CONNECT: no SYN yet; the first write sends it with the data"}, true
}

// deferredWrite is the first write after a TCP_FASTOPEN_CONNECT connect.
func (t *Target) deferredWrite(s *sock, c *target.Call) target.Result {
	fo := t.e.(FastOpener)
	data := make([]byte, c.Len)
	for i := range data {
		data[i] = byte('A' + i%26)
	}
	id, n, err := fo.ConnectFastOpen(s.foLocal, s.foDeferred, data)
	if err != nil {
		return target.Err(errnoOf(err, false))
	}
	s.conn, s.foDeferred = id, netip.AddrPort{}
	s.connected = true
	_ = t.applyKeepAlive(s)
	return target.Result{Ret: int64(n), Detail: fmt.Sprintf("endpoint %d: open with %d bytes of data (TCP_FASTOPEN_CONNECT)", id, n)}
}

// sendtoConnect is sendto on a socket not yet connected: an implicit
// connect that carries the data, as FreeBSD does on a TCP_FASTOPEN socket
// and Linux with MSG_FASTOPEN. The call returns at once with the length
// queued; the SYN carries the data if the engine holds a cookie.
func (t *Target) sendtoConnect(s *sock, c *target.Call) target.Result {
	fo, ok := t.e.(FastOpener)
	if !ok || (!s.fastOpen && c.Flags&msgFastOpen == 0) {
		return target.Err("EPIPE")
	}
	port := s.port
	if port == 0 {
		port = t.nextPort
		t.nextPort++
	}
	local := netip.AddrPortFrom(c.Local.Addr(), port)
	data := make([]byte, c.Len)
	for i := range data {
		data[i] = byte('A' + i%26)
	}
	id, n, err := fo.ConnectFastOpen(local, c.Remote, data)
	if err != nil {
		return target.Err(errnoOf(err, false))
	}
	s.conn, s.port = id, port
	_ = t.applyKeepAlive(s)
	return target.Result{Ret: int64(n), Local: local, Detail: fmt.Sprintf("endpoint %d: open with %d bytes of data (TCP Fast Open)", id, n)}
}
