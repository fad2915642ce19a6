package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/webui"
)

func serve(args []string, stderr io.Writer) int {
	c, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated serve: %v\n", err)
		return 2
	}
	logger, err := newLogger(c.logFormat, c.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated serve: %v\n", err)
		return 2
	}
	fsync, err := store.ParseFsyncMode(c.fsync)
	if err != nil {
		fmt.Fprintf(stderr, "tcpstated serve: --fsync: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, c, fsync, logger); err != nil {
		logger.Error("server failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// runServer serves until ctx is cancelled, then shuts down gracefully.
func runServer(ctx context.Context, c *serveConfig, fsync store.FsyncMode, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rpcm := newRPCMetrics(reg)
	bi := readBuildInfo()
	registerBuildInfo(reg, bi)
	icpt, initMetrics := serverInterceptors(reg, rpcm, logger, c.accessLog)

	sec, err := newSecurity(c, logger) // security.go
	if err != nil {
		return err
	}
	if err := sec.checkAddr("gRPC", c.grpcAddr); err != nil {
		return err
	}
	if err := sec.checkAddr("HTTP", c.httpAddr); err != nil {
		return err
	}
	// The gRPC listener comes first: with replicas its address is where
	// the others forward calls (store.go).
	glis, err := net.Listen("tcp", c.grpcAddr)
	if err != nil {
		return fmt.Errorf("gRPC listener: %w", err)
	}
	sw, err := openStore(ctx, c, fsync, glis.Addr().String(), logger)
	if err != nil {
		glis.Close()
		return err
	}
	defer sw.close()
	svc, err := service.New(sw.st, service.Config{
		Limits:        c.limits,
		Logger:        logger,
		Metrics:       reg,
		RequireTenant: sec.auth != nil,
		SessionTTL:    c.sessionTTL,
		PanicHook:     panicHook(),
	})
	if err != nil {
		glis.Close()
		return err
	}
	lim := svc.Limits()
	for _, r := range svc.RestoreReports() {
		logger.Warn("session restored with a report", "session", r.Session, "truncated", r.Truncated,
			"differences", r.Differences, "completed", r.Completed, "err", r.Err)
	}

	gs := grpc.NewServer(append(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(lim.MaxMessageBytes),
	}, icpt...), append(append(sec.grpcOptions(),
		// The replica router goes first: a call for a session another
		// replica owns is forwarded before this one's interceptors see it.
		sw.attach(svc, reg, []grpc.DialOption{grpc.WithTransportCredentials(sec.gatewayCredentials())}, logger)...),
		svc.ServerOptions()...)...)...)
	svc.Register(gs)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	initMetrics(gs)

	hlis, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		glis.Close()
		svc.Close()
		return fmt.Errorf("HTTP listener: %w", err)
	}
	handler, closeGateway, err := httpHandler(ctx, glis.Addr().String(), lim, reg, hs, sec, bi.version)
	if err != nil {
		glis.Close()
		hlis.Close()
		svc.Close()
		return err
	}
	hsrv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(glis) }()
	go func() { errc <- sec.serveHTTP(hsrv, hlis) }()
	for _, name := range []string{"", pb.SessionService_ServiceDesc.ServiceName, pb.EndpointService_ServiceDesc.ServiceName,
		pb.SegmentService_ServiceDesc.ServiceName, pb.LogService_ServiceDesc.ServiceName, pb.ScriptService_ServiceDesc.ServiceName} {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	sec.watchReload(ctx) // before "listening": a SIGHUP from then on reloads
	attrs := append([]any{"grpc", glis.Addr().String(), "http", hlis.Addr().String()}, sw.logAttrs(c)...)
	logger.Info("listening", append(attrs, "fsync", fsync.String(), "sessions", svc.SessionCount(), "version", bi.version)...)
	sw.takeOver(ctx, c)
	sec.announce()

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", c.shutdownTimeout)
	case serveErr = <-errc:
		logger.Error("a listener failed; shutting down", "err", serveErr)
	}

	// Stop accepting, let in-flight calls finish, then sync and close logs.
	hs.Shutdown() // health reports NOT_SERVING
	svc.StopStreams()
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := hsrv.Shutdown(sctx); err != nil {
		logger.Warn("HTTP shutdown cut off", "err", err)
		hsrv.Close()
	}
	closeGateway()
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		logger.Warn("in-flight gRPC calls did not finish in time; stopping them")
		gs.Stop()
		<-done
	}
	if err := svc.Close(); err != nil {
		logger.Error("closing session logs", "err", err)
		return err
	}
	logger.Info("stopped")
	return serveErr
}

// httpHandler serves the REST gateway (dialing the gRPC listener on
// loopback, which server-streaming calls need), /openapi.json, /metrics
// and /healthz.
func httpHandler(ctx context.Context, grpcAddr string, lim service.Limits, reg *prometheus.Registry, hs *health.Server, sec *security, version string) (http.Handler, func(), error) {
	doc, err := openAPIDocument(version)
	if err != nil {
		return nil, nil, err
	}
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			// Every field is shown, zero or not, so a curl user sees the
			// whole shape of each resource (e.g. "bytesReadable": 0).
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	gctx, cancel := context.WithCancel(context.Background())
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(sec.gatewayCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(lim.MaxMessageBytes)),
	}
	for _, register := range []func(context.Context, *runtime.ServeMux, string, []grpc.DialOption) error{
		pb.RegisterSessionServiceHandlerFromEndpoint,
		pb.RegisterEndpointServiceHandlerFromEndpoint,
		pb.RegisterSegmentServiceHandlerFromEndpoint,
		pb.RegisterLogServiceHandlerFromEndpoint,
		pb.RegisterScriptServiceHandlerFromEndpoint,
	} {
		if err := register(gctx, gw, grpcAddr, opts); err != nil {
			cancel()
			return nil, nil, fmt.Errorf("REST gateway: %w", err)
		}
	}
	conn, err := grpc.NewClient(grpcAddr, append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))...)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("REST gateway: %w", err)
	}
	mux := http.NewServeMux()
	registerFileRoutes(mux, gw, conn) // pcap and diagram.svg (files.go)
	webui.Register(mux)               // the web view at /ui/
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	// JSON carries bytes as base64: allow for its 4/3 growth and the field names.
	maxBody := int64(lim.MaxMessageBytes)*2 + 4096
	mux.Handle("/", limitBody(gw, maxBody))
	return sec.httpHandler(mux), func() { cancel(); conn.Close() }, nil
}

// limitBody refuses a request whose declared body is above max bytes with
// RESOURCE_EXHAUSTED (HTTP 429), as the gRPC server refuses a message above
// its limit; a longer body without a Content-Length is cut off at max.
func limitBody(gw *runtime.ServeMux, max int64) http.Handler {
	h := http.MaxBytesHandler(gw, max)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			_, out := runtime.MarshalerForRequest(gw, r)
			runtime.HTTPError(r.Context(), gw, out, w, r, status.Errorf(codes.ResourceExhausted,
				"request body: %d bytes is above the limit of %d", r.ContentLength, max))
			return
		}
		h.ServeHTTP(w, r)
	})
}
