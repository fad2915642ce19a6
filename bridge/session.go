// The session plumbing: the service (in this process, or a running server
// at Config.Server) and the REALTIME session the device is bridged to.

package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
)

// dial connects to Server, or starts a service and a gRPC server in this
// process (over an in-memory connection, and on GRPCListen if given).
func (c *Config) dial(ctx context.Context, out *lineWriter, logger *slog.Logger) (*grpc.ClientConn, func(), error) {
	callOpts := grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20))
	if c.Server != "" {
		conn, err := grpc.NewClient(c.Server, grpc.WithTransportCredentials(insecure.NewCredentials()), callOpts)
		if err != nil {
			return nil, nil, err
		}
		return conn, func() { conn.Close() }, nil
	}
	dir, removeDir := c.DataDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "tcpstated-tun-")
		if err != nil {
			return nil, nil, err
		}
		dir, removeDir = d, true
	}
	svc, err := service.Open(service.Config{
		DataDir: dir,
		Fsync:   c.Fsync,
		Logger:  logger,
		Limits:  service.Limits{MaxBufferBytes: max(c.ReceiveWindow, c.SendBuffer, service.DefaultMaxBufferBytes), MaxMessageBytes: 16 << 20},
	})
	if err != nil {
		if removeDir {
			os.RemoveAll(dir)
		}
		return nil, nil, err
	}
	gs := grpc.NewServer(append([]grpc.ServerOption{grpc.MaxRecvMsgSize(16 << 20)}, svc.ServerOptions()...)...)
	svc.Register(gs)
	reflection.Register(gs)
	mem := bufconn.Listen(4 << 20)
	go gs.Serve(mem)
	if c.GRPCListen != "" {
		lis, err := listenAddr(c.GRPCListen)
		if err != nil {
			gs.Stop()
			svc.Close()
			if removeDir {
				os.RemoveAll(dir)
			}
			return nil, nil, fmt.Errorf("serving the API on %s: %w", c.GRPCListen, err)
		}
		go gs.Serve(lis)
		addr := lis.Addr().String()
		if lis.Addr().Network() == "unix" {
			addr = "unix:" + addr
		}
		out.printf("api %s", addr)
	}
	conn, err := grpc.NewClient("passthrough:///tcpstated-tun",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return mem.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()), callOpts)
	if err != nil {
		gs.Stop()
		svc.Close()
		return nil, nil, err
	}
	cleanup := func() {
		conn.Close()
		svc.StopStreams()
		gs.Stop()
		if err := svc.Close(); err != nil {
			logger.Warn("closing the session log", "err", err)
		}
		if removeDir {
			os.RemoveAll(dir)
		}
	}
	return conn, cleanup, nil
}

// listenAddr listens on "unix:PATH" or a TCP host:port.
func listenAddr(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

// ensureSession gets Session, or creates it: REALTIME, window scaling on,
// the configured buffers. An existing session must be REALTIME.
func (c *Config) ensureSession(ctx context.Context, sc pb.SessionServiceClient) (string, error) {
	name := "sessions/" + c.Session
	got, err := sc.GetSession(ctx, &pb.GetSessionRequest{Name: name})
	if err == nil {
		if m := got.Session.GetOptions().GetClockMode(); m != pb.ClockMode_CLOCK_MODE_REALTIME {
			return "", fmt.Errorf("session %s has clock mode %v: a device needs CLOCK_MODE_REALTIME", name, m)
		}
		return name, nil
	}
	if status.Code(err) != codes.NotFound {
		return "", err
	}
	opts := &pb.SessionOptions{
		ClockMode:     pb.ClockMode_CLOCK_MODE_REALTIME,
		ReceiveWindow: uint32(c.ReceiveWindow),
		SendBuffer:    uint32(c.SendBuffer),
		Profile:       c.Profile,
		Switches:      maps.Clone(c.Switches),
	}
	if c.FastOpen {
		if opts.Switches == nil {
			opts.Switches = map[string]string{}
		}
		opts.Switches["fastopen.server_enable"] = "1"
		opts.Switches["fastopen.client_enable"] = "1"
	}
	_, err = sc.CreateSession(ctx, &pb.CreateSessionRequest{SessionId: c.Session, Session: &pb.Session{Kind: pb.SessionKind_SESSION_KIND_TUN, Options: opts}})
	if err != nil {
		return "", fmt.Errorf("creating session %s: %w", name, err)
	}
	return name, nil
}
