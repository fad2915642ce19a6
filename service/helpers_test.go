package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/store/filestore"

	"github.com/tcpstated/tcpstated/store/memstore"
)

// env is an in-process server over bufconn and clients of every service.
type env struct {
	t    *testing.T
	dir  string
	cfg  Config
	svc  *Service
	srv  *grpc.Server
	conn *grpc.ClientConn

	sessions  pb.SessionServiceClient
	endpoints pb.EndpointServiceClient
	segments  pb.SegmentServiceClient
	logs      pb.LogServiceClient

	mem     *memstore.Store // newMemEnv: the store in place of dir
	memUsed bool            // mem has served a Service: restart reopens it
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if cfg.Fsync == store.FsyncAlways && testing.Short() {
		cfg.Fsync = store.FsyncNever
	}
	e := &env{t: t, dir: cfg.DataDir, cfg: cfg}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// newMemEnv is newEnv over an in-memory store, for tests about the API
// rather than the disk; restart keeps the logs.
func newMemEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	e := &env{t: t, cfg: cfg, mem: memstore.New(memstore.Options{})}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *env) start() {
	e.t.Helper()
	var svc *Service
	var err error
	if e.mem != nil {
		if e.memUsed {
			e.mem = e.mem.Reopen()
		}
		e.memUsed = true
		svc, err = New(e.mem, e.cfg)
	} else {
		svc, err = Open(e.cfg)
	}
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.svc = svc
	lis := bufconn.Listen(1 << 20)
	e.srv = grpc.NewServer()
	svc.Register(e.srv)
	go e.srv.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.conn = conn
	e.sessions = pb.NewSessionServiceClient(conn)
	e.endpoints = pb.NewEndpointServiceClient(conn)
	e.segments = pb.NewSegmentServiceClient(conn)
	e.logs = pb.NewLogServiceClient(conn)
}

func (e *env) stop() {
	if e.svc == nil {
		return
	}
	e.conn.Close()
	e.srv.Stop()
	if err := e.svc.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	e.svc = nil
}

// restart closes the service and opens a new one on the same directory.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// must fails the test on a non-nil error.
func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
}

func fixedISNOptions(isn uint32) *pb.SessionOptions {
	return &pb.SessionOptions{IsnMode: pb.IsnMode_ISN_MODE_FIXED, FixedIsn: isn, Msl: durationpb.New(30 * time.Second)}
}

func (e *env) createSession(id string, opts *pb.SessionOptions) *pb.Session {
	e.t.Helper()
	resp, err := e.sessions.CreateSession(ctx(e.t), &pb.CreateSessionRequest{SessionId: id, Session: &pb.Session{Options: opts}})
	if err != nil {
		e.t.Fatalf("CreateSession: %v", err)
	}
	return resp.Session
}

func (e *env) listen(session, addr string) *pb.Endpoint {
	e.t.Helper()
	resp, err := e.endpoints.CreateEndpoint(ctx(e.t), &pb.CreateEndpointRequest{
		Parent: session, Mode: &pb.CreateEndpointRequest_Listen{Listen: &pb.ListenConfig{LocalAddress: addr}},
	})
	if err != nil {
		e.t.Fatalf("CreateEndpoint(listen %s): %v", addr, err)
	}
	return resp.Endpoint
}

// seg builds structured segment fields.
func seg(src, dst string, seq, ack uint32, flags []string, payload string) *pb.SegmentFields {
	f := &pb.SegmentFields{SourceAddress: src, DestinationAddress: dst, Seq: seq, Ack: ack, Flags: flags, Window: 65535}
	if payload != "" {
		f.Data = &pb.SegmentFields_PayloadText{PayloadText: payload}
	}
	return f
}

func (e *env) submit(session string, f *pb.SegmentFields) *pb.SubmitSegmentResponse {
	e.t.Helper()
	resp, err := e.segments.SubmitSegment(ctx(e.t), &pb.SubmitSegmentRequest{Parent: session, Segment: &pb.SubmitSegmentRequest_Fields{Fields: f}})
	if err != nil {
		e.t.Fatalf("SubmitSegment: %v", err)
	}
	return resp
}

func (e *env) getSession(name string) *pb.Session {
	e.t.Helper()
	return must[*pb.GetSessionResponse](e.t)(e.sessions.GetSession(ctx(e.t), &pb.GetSessionRequest{Name: name})).Session
}

func (e *env) endpoint(name string) *pb.Endpoint {
	e.t.Helper()
	resp, err := e.endpoints.GetEndpoint(ctx(e.t), &pb.GetEndpointRequest{Name: name})
	if err != nil {
		e.t.Fatalf("GetEndpoint(%s): %v", name, err)
	}
	return resp.Endpoint
}

func (e *env) recordCount(session string) uint64 {
	e.t.Helper()
	resp, err := e.sessions.GetSession(ctx(e.t), &pb.GetSessionRequest{Name: session})
	if err != nil {
		e.t.Fatalf("GetSession(%s): %v", session, err)
	}
	return resp.Session.RecordCount
}

func (e *env) verify(session string) *pb.VerifySessionResponse {
	e.t.Helper()
	resp, err := e.logs.VerifySession(ctx(e.t), &pb.VerifySessionRequest{Name: session})
	if err != nil {
		e.t.Fatalf("VerifySession(%s): %v", session, err)
	}
	return resp
}

func hasFlags(s *pb.Segment, want ...string) bool {
	if len(s.Flags) != len(want) {
		return false
	}
	for i := range want {
		if s.Flags[i] != want[i] {
			return false
		}
	}
	return true
}

func protoEqual(a, b proto.Message) bool { return proto.Equal(a, b) }

// fileScan reads the log file at path for VerifyLog and DumpLog, as
// `tcpstated log` does.
func fileScan(path string) Scan {
	return func(fn func(uint64, []byte) error) (*store.DamageError, error) {
		res, err := filestore.ScanFile(path, fn)
		return res.Damage, err
	}
}
