package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
)

// The bare echo server: tcpstate.v1.SegmentService answering every call
// at once with a canned response of the shape the real server gives the
// same load (recorded from the real service, in-process, at start), behind
// the same gRPC server and grpc-gateway set-up as cmd/tcpstated. The
// difference between it and tcpstated is what the service itself costs:
// sessions, the engine, the log, and building the response.

// rawOnly is what the stream load asks for: bulk clients want the bytes,
// not the decoded views.
const rawOnly = true

type echo struct {
	pb.UnimplementedSegmentServiceServer
	unary  []*pb.SubmitSegmentResponse
	stream []*pb.ExchangeSegmentsResponse
	n      atomic.Uint64
}

func (e *echo) SubmitSegment(ctx context.Context, req *pb.SubmitSegmentRequest) (*pb.SubmitSegmentResponse, error) {
	return e.unary[e.n.Add(1)%uint64(len(e.unary))], nil
}

func (e *echo) ExchangeSegments(st pb.SegmentService_ExchangeSegmentsServer) error {
	for i := 0; ; i++ {
		req, err := st.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		c := e.stream[i%len(e.stream)]
		if err := st.Send(&pb.ExchangeSegmentsResponse{Sequence: req.Sequence, Processed: uint32(len(req.IpPackets)), Outputs: c.Outputs}); err != nil {
			return err
		}
	}
}

// record drives the real service in-process with the load's segments and
// keeps what it answers: 16 unary responses to data segments, and 4
// ExchangeSegments responses to messages of perMessage data segments.
func record(perMessage int) (*echo, error) {
	dir, err := os.MkdirTemp("", "tcpstated-bench-echo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	svc, err := service.Open(service.Config{DataDir: dir, Fsync: store.FsyncNever, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	gs := grpc.NewServer()
	svc.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := setupSessions(ctx, conn, []string{"sessions/unary", "sessions/stream"}); err != nil {
		return nil, err
	}
	e := &echo{}
	seg := pb.NewSegmentServiceClient(conn)
	p := newPeer(0)
	var buf []byte
	for i := 0; len(e.unary) < 16; i++ {
		s := p.next()
		buf = s.packet(buf)
		r, err := seg.SubmitSegment(ctx, &pb.SubmitSegmentRequest{Parent: "sessions/unary", Segment: &pb.SubmitSegmentRequest_IpPacket{IpPacket: buf}})
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		if len(s.data) > 0 {
			e.unary = append(e.unary, r)
		}
	}
	st, err := seg.ExchangeSegments(ctx)
	if err != nil {
		return nil, err
	}
	p = newPeer(1)
	msg := newMessage(perMessage)
	for i := 0; i < 5; i++ {
		req := msg.fill("sessions/stream", uint64(i), p)
		if err := st.Send(req); err != nil {
			return nil, err
		}
		r, err := st.Recv()
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		if r.Error != "" || int(r.Processed) != perMessage {
			return nil, fmt.Errorf("recording: exchange: %d processed, %q", r.Processed, r.Error)
		}
		if i > 0 { // the first message holds the handshake
			e.stream = append(e.stream, r)
		}
	}
	st.CloseSend()
	return e, nil
}

// gatewayMux is the REST gateway as cmd/tcpstated configures it.
func gatewayMux() *runtime.ServeMux {
	return runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}))
}

// maxMessage is cmd/tcpstated's default message limit.
const maxMessage = service.DefaultMaxMessageBytes

// ServeEcho runs the bare echo server until ctx ends: gRPC on grpcAddr;
// the gateway dialing that gRPC server on loopback on httpAddr (as
// cmd/tcpstated does); the gateway calling the echo handlers in-process on
// inprocAddr. With profiling, httpAddr also serves /debug/pprof/profile.
// It logs "listening" with the three addresses to logw.
func ServeEcho(ctx context.Context, grpcAddr, httpAddr, inprocAddr string, perMessage int, profiling bool, logw io.Writer) error {
	log := slog.New(slog.NewTextHandler(logw, nil))
	e, err := record(perMessage)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMessage))
	pb.RegisterSegmentServiceServer(gs, e)
	glis, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	gctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loop := gatewayMux()
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(maxMessage)),
	}
	if err := pb.RegisterSegmentServiceHandlerFromEndpoint(gctx, loop, glis.Addr().String(), opts); err != nil {
		return err
	}
	inproc := gatewayMux()
	if err := pb.RegisterSegmentServiceHandlerServer(gctx, inproc, e); err != nil {
		return err
	}
	var servers []*http.Server
	var addrs []string
	errc := make(chan error, 3)
	for _, h := range []struct {
		addr string
		mux  *runtime.ServeMux
	}{{httpAddr, loop}, {inprocAddr, inproc}} {
		lis, err := net.Listen("tcp", h.addr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/", http.MaxBytesHandler(h.mux, int64(maxMessage)*2+4096))
		if profiling {
			// As tcpstated serve --debug-endpoints: --profile-dir
			// profiles the echo too.
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		addrs = append(addrs, lis.Addr().String())
		go func() { errc <- srv.Serve(lis) }()
	}
	go func() { errc <- gs.Serve(glis) }()
	log.Info("listening", "grpc", glis.Addr().String(), "http", addrs[0], "http_inproc", addrs[1])
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		s.Close()
	}
	gs.Stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
