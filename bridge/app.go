// The application: the endpoint (listen or connect), accepting, and one
// connection's run to its result line.

package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// app is the application: it uses the session through the endpoint API,
// as any client would.
type app struct {
	cfg    *Config
	ep     pb.EndpointServiceClient
	parent string
	out    *lineWriter
	wake   *notifier
}

// outputs handles what one of the application's calls caused: its state
// changes are printed (its segments reach the device through the watch).
func (a *app) outputs(o *pb.Outputs) { a.out.transitions(o) }

// pollInterval bounds how long the application waits without a wake-up
// (changes caused by timers only, such as the end of TIME-WAIT).
const pollInterval = 100 * time.Millisecond

// run opens the endpoint and serves connections. Its error says what
// failed: the endpoint, accepting, or connections (each printed an error
// line).
func (a *app) run(ctx context.Context) error {
	c := a.cfg
	if c.Connect.IsValid() {
		port := c.LocalPort
		if port == 0 {
			port = uint16(32768 + rand.IntN(61000-32768))
		}
		local := netip.AddrPortFrom(c.Local, port)
		resp, err := a.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: a.parent, Mode: &pb.CreateEndpointRequest_Connect{
			Connect: &pb.ConnectConfig{LocalAddress: local.String(), RemoteAddress: c.Connect.String(), FastOpen: c.FastOpen}}})
		if err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		name := resp.Endpoint.GetName()
		a.out.printf("connecting %s %s %s", name, local, c.Connect)
		a.outputs(resp.Outputs)
		if !a.serveConn(ctx, name) {
			return fmt.Errorf("connection %s failed", name)
		}
		return nil
	}
	local := netip.AddrPortFrom(c.Local, c.Listen)
	resp, err := a.ep.CreateEndpoint(ctx, &pb.CreateEndpointRequest{Parent: a.parent, Mode: &pb.CreateEndpointRequest_Listen{
		Listen: &pb.ListenConfig{LocalAddress: local.String(), FastOpen: c.FastOpen}}})
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	lname := resp.Endpoint.GetName()
	a.out.printf("listening %s %s", lname, local)
	results := make(chan bool, 16)
	started, ended, failed := 0, 0, 0
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		w := a.wake.wait()
		for c.Connections == 0 || started < c.Connections {
			r, err := a.ep.AcceptConnection(ctx, &pb.AcceptConnectionRequest{Name: lname})
			if status.Code(err) == codes.FailedPrecondition {
				break // nothing to accept
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("accept: %w", err)
			}
			started++
			a.out.printf("accepted %s %s %s", r.Endpoint.GetName(), r.Endpoint.GetLocalAddress(), r.Endpoint.GetRemoteAddress())
			a.outputs(r.Outputs)
			go func(name string) { results <- a.serveConn(ctx, name) }(r.Endpoint.GetName())
		}
		select {
		case ok := <-results:
			ended++
			if !ok {
				failed++
			}
			if c.Connections > 0 && ended == c.Connections {
				if failed > 0 {
					return fmt.Errorf("%d of %d connections failed", failed, ended)
				}
				return nil
			}
		case <-w:
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// serveConn runs one connection to its end and prints its result line.
func (a *app) serveConn(ctx context.Context, name string) bool {
	c := a.cfg
	cs := &connState{name: name, recvHash: sha256.New(), sentHash: sha256.New(), chunk: sendChunk}
	switch {
	case c.Echo:
		cs.echo = &bufSource{}
		cs.src = cs.echo
	case c.ServeFile != "":
		data, err := os.ReadFile(c.ServeFile)
		if err != nil {
			a.out.printf("error %s received=0 sent=0: %v", name, err)
			a.ep.AbortEndpoint(ctx, &pb.AbortEndpointRequest{Name: name})
			return false
		}
		cs.src = &bufSource{buf: data, closed: true}
	default:
		cs.src = &patternSource{total: c.SendBytes}
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		w := a.wake.wait()
		finished, err := a.step(ctx, cs)
		if err != nil && a.endedCleanly(ctx, cs, err) {
			finished, err = true, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			msg := err.Error()
			if st, ok := status.FromError(err); ok {
				msg = st.Message()
			}
			a.out.printf("error %s received=%d sent=%d: %s", name, cs.received, cs.sent, msg)
			return false
		}
		if finished {
			state := ""
			if r, err := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: name}); err == nil {
				state = r.Endpoint.GetStateName()
			}
			rate := 0.0
			if d := cs.lastRecv.Sub(cs.firstRecv); d > 0 {
				rate = float64(cs.received) / 1e6 / d.Seconds()
			}
			end := int64(0)
			if cs.received > 0 {
				end = cs.lastRecv.UnixNano()
			}
			a.out.printf("done %s received=%d received_sha256=%s sent=%d sent_sha256=%s state=%s recv_mbps=%.2f recv_end_unix_ns=%d",
				name, cs.received, hex.EncodeToString(cs.recvHash.Sum(nil)), cs.sent, hex.EncodeToString(cs.sentHash.Sum(nil)), state, rate, end)
			return true
		}
		select {
		case <-w:
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
}

// endedCleanly reports whether err only says the connection is already
// gone after a clean end: CLOSED with the peer's FIN received, everything
// read and no error (e.g. TIME-WAIT cut short by a RST, RFC 9293 §3.10.7.4,
// before the application's close). Reads and closes then answer
// "connection does not exist".
func (a *app) endedCleanly(ctx context.Context, cs *connState, err error) bool {
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || st.Message() != fsm.ErrConnectionDoesNotExist.Error() {
		return false
	}
	r, gerr := a.ep.GetEndpoint(ctx, &pb.GetEndpointRequest{Name: cs.name})
	if gerr != nil {
		return false
	}
	e := r.Endpoint
	if cs.echo != nil {
		cs.echo.closed = true
	}
	if e.StateName != "CLOSED" || !e.FinReceived || e.Error != "" || e.BytesReadable > 0 || !cs.src.done() {
		return false
	}
	cs.eof, cs.closed = true, true
	return true
}
