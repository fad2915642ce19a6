package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
)

// The server's outer interceptors, outermost first: the standard gRPC
// server metrics (grpc_server_*), tcpstated_grpc_calls_total, the access
// log, then recovery, so that a recovered panic is counted and logged as
// the INTERNAL error it becomes.

// serverInterceptors returns the options installing them, and a function
// to call once every service is registered (it makes every method's
// grpc_server_* series exist from the start, at 0).
func serverInterceptors(reg prometheus.Registerer, rpcm *rpcMetrics, logger *slog.Logger, accessLog bool) ([]grpc.ServerOption, func(*grpc.Server)) {
	sm := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(prometheus.ExponentialBuckets(25e-6, 2, 18))))
	reg.MustRegister(sm)
	panics := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tcpstated_grpc_panics_total", Help: "gRPC calls that panicked outside a session's engine; recovered, they failed with INTERNAL.",
	})
	reg.MustRegister(panics)
	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		panics.Inc()
		logger.Error("a call panicked; recovered", "panic", fmt.Sprint(p), "stack", service.Stack())
		return status.Errorf(codes.Internal, "internal error: the call panicked (%v); the server keeps serving", p)
	})
	al := &accessLogger{log: logger, on: accessLog}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(sm.UnaryServerInterceptor(), rpcm.unary, al.unary, recovery.UnaryServerInterceptor(rec)),
		grpc.ChainStreamInterceptor(sm.StreamServerInterceptor(), rpcm.stream, al.stream, recovery.StreamServerInterceptor(rec)),
	}
	return opts, func(gs *grpc.Server) { sm.InitializeMetrics(gs) }
}

// accessLogger logs one line per finished call: method, session, code,
// duration, and the request_id when the call had one.
type accessLogger struct {
	log *slog.Logger
	on  bool
}

func (a *accessLogger) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !a.on {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	a.emit(ctx, info.FullMethod, req, err, time.Since(start))
	return resp, err
}

func (a *accessLogger) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !a.on {
		return handler(srv, ss)
	}
	start := time.Now()
	w := &firstMsg{ServerStream: ss}
	err := handler(srv, w)
	a.emit(ss.Context(), info.FullMethod, w.first.Load(), err, time.Since(start))
	return err
}

func (a *accessLogger) emit(ctx context.Context, method string, req any, err error, d time.Duration) {
	code := status.Code(err)
	attrs := []slog.Attr{slog.String("method", method)}
	if s := service.RequestSession(req); s != "" {
		attrs = append(attrs, slog.String("session", s))
	}
	if id := service.RequestID(req); id != "" {
		attrs = append(attrs, slog.String("request_id", id))
	}
	attrs = append(attrs, slog.String("code", code.String()), slog.Duration("duration", d))
	level := slog.LevelInfo
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelError
		attrs = append(attrs, slog.String("err", status.Convert(err).Message()))
	}
	a.log.LogAttrs(ctx, level, "rpc", attrs...)
}

// firstMsg remembers a stream's first request, which names its session.
type firstMsg struct {
	grpc.ServerStream
	first atomic.Value
}

func (f *firstMsg) RecvMsg(m any) error {
	err := f.ServerStream.RecvMsg(m)
	if err == nil {
		f.first.CompareAndSwap(nil, m)
	}
	return err
}

// panicHook is the fault injection of TCPSTATED_TEST_PANIC, for tests: when
// set, sending exactly its text on any connection panics inside the
// engine's step (the service recovers it and fails that session only).
func panicHook() func(string, *pb.Input) {
	marker := os.Getenv("TCPSTATED_TEST_PANIC")
	if marker == "" {
		return nil
	}
	return func(session string, in *pb.Input) {
		if s := in.GetSend(); s != nil && string(s.Data) == marker {
			panic("TCPSTATED_TEST_PANIC: injected panic in session " + session)
		}
	}
}
