// One connection's work: read, send what the buffer takes, close by policy.

package bridge

import (
	"context"
	"hash"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// source is what the application sends: the SendBytes pattern, a file,
// or (echo) what it received.
type source interface {
	// peek returns up to n bytes to send next (nil when none are ready).
	peek(n int) []byte
	advance(n int)
	done() bool // nothing more will be sent
}

type patternSource struct{ off, total int64 }

func (s *patternSource) peek(n int) []byte {
	n = int(min(int64(n), s.total-s.off))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((s.off + int64(i)) % 251)
	}
	return b
}
func (s *patternSource) advance(n int) { s.off += int64(n) }
func (s *patternSource) done() bool    { return s.off >= s.total }

// bufSource sends a byte slice (a file, or what echo received).
type bufSource struct {
	buf    []byte
	closed bool // no more will be appended
}

func (s *bufSource) peek(n int) []byte { return s.buf[:min(n, len(s.buf))] }
func (s *bufSource) advance(n int)     { s.buf = s.buf[n:] }
func (s *bufSource) done() bool        { return s.closed && len(s.buf) == 0 }

// SendData chunk sizes: large while the send buffer takes everything,
// small probes while it is full.
const (
	sendChunk = 256 << 10
	sendProbe = 16 << 10
)

// connState is one connection of the application.
type connState struct {
	name                string
	src                 source
	echo                *bufSource
	recvHash, sentHash  hash.Hash
	received, sent      int64
	firstRecv, lastRecv time.Time
	eof, shutdown       bool
	chunk               int
	closed              bool
	synced              bool // the handshake is done: closing no longer discards what was sent
}

// step reads what is readable, sends what the send buffer takes and
// applies the close policy. It reports whether the connection is finished.
func (a *app) step(ctx context.Context, cs *connState) (bool, error) {
	c := a.cfg
	if !cs.eof {
		r, err := a.ep.ReceiveData(ctx, &pb.ReceiveDataRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		a.outputs(r.Outputs)
		if n := len(r.Data); n > 0 {
			now := time.Now()
			if cs.received == 0 {
				cs.firstRecv = now
			}
			cs.lastRecv = now
			cs.received += int64(n)
			cs.recvHash.Write(r.Data)
			if cs.echo != nil {
				cs.echo.buf = append(cs.echo.buf, r.Data...)
			}
		}
		if r.Eof {
			cs.eof = true
			if cs.echo != nil {
				cs.echo.closed = true
			}
		}
	}
	for !cs.shutdown && !cs.closed {
		b := cs.src.peek(cs.chunk)
		if len(b) == 0 {
			break
		}
		r, err := a.ep.SendData(ctx, &pb.SendDataRequest{Name: cs.name, Payload: &pb.SendDataRequest_Data{Data: b}})
		if st, _ := status.FromError(err); st.Code() == codes.ResourceExhausted && st.Message() == fsm.ErrInsufficientResources.Error() {
			err = nil // the send buffer is full
		}
		if err != nil {
			return false, err
		}
		a.outputs(r.GetOutputs())
		n := int(r.GetBytesAccepted())
		cs.sentHash.Write(b[:n])
		cs.sent += int64(n)
		cs.src.advance(n)
		if n < len(b) {
			cs.chunk = sendProbe
			break
		}
		cs.chunk = sendChunk
	}
	if c.CloseAfter == CloseNever || !cs.src.done() {
		return false, nil
	}
	fire := c.CloseAfter == CloseSent || cs.eof
	if fire && !cs.synced {
		// RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB with the
		// data queued behind the SYN. When the SYN's answer is slow (a
		// delayed path) everything may be queued before it comes: wait for
		// the handshake.
		r, err := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		if st := r.Endpoint.GetStateName(); st == "SYN-SENT" || st == "SYN-RECEIVED" {
			return false, nil
		}
		cs.synced = true
	}
	switch {
	case !fire:
		return false, nil
	case c.Abort:
		r, err := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		if e := r.Endpoint; e.BytesUnsent+e.BytesUnacknowledged > 0 {
			return false, nil // abort once the peer has everything
		}
		r2, err := a.ep.AbortEndpoint(ctx, &pb.AbortEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		a.outputs(r2.Outputs)
		return true, nil
	case c.CloseAfter == CloseSent && !cs.shutdown:
		// The active close: FIN now, reading on until the peer's FIN.
		r, err := a.ep.ShutdownEndpoint(ctx, &pb.ShutdownEndpointRequest{Name: cs.name})
		if err != nil {
			return false, err
		}
		a.outputs(r.Outputs)
		cs.shutdown = true
	}
	if !cs.eof {
		return false, nil
	}
	// Everything read and sent: close(2). After a shutdown this only
	// releases the endpoint; otherwise it is the passive close.
	r, err := a.ep.CloseEndpoint(ctx, &pb.CloseEndpointRequest{Name: cs.name})
	if err != nil {
		return false, err
	}
	a.outputs(r.Outputs)
	cs.closed = true
	return true, nil
}
