package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/service"
	"github.com/tcpstated/tcpstated/store/filestore"
)

// serveConfig is what `tcpstated serve` is told by flags and environment.
type serveConfig struct {
	grpcAddr, httpAddr string
	dataDir            string
	fsync              string
	logFormat          string
	logLevel           string
	shutdownTimeout    time.Duration
	limits             service.Limits
	maxLogBytes        int64
	maxOpenLogs        int
	sessionTTL         time.Duration
	accessLog          bool
	// security.go
	authTokens      string
	tlsCert, tlsKey string
	insecure        bool
	debugEndpoints  bool
	// store.go
	store                string
	replicaID, advertise string
	leaseTTL, leaseRenew time.Duration
	takeoverEvery        time.Duration
}

// envName is the environment fallback of a flag: TCPSTATED_GRPC_ADDR for
// --grpc-addr.
func envName(flagName string) string {
	return "TCPSTATED_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("tcpstated serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.grpcAddr, "grpc-addr", "127.0.0.1:50051", "address for the gRPC API (port 0: any free port, logged at start)")
	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:8080", "address for HTTP: the REST gateway, /openapi.json, /metrics, /healthz (port 0: any free port)")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory of the session logs, one file per session; created on first run")
	fs.StringVar(&c.fsync, "fsync", "always", "when log records reach stable storage: always (a call returns once its records are fsync'ed, with group commit), batch (every 10 ms; a machine crash loses that much), never (only at shutdown)")
	fs.StringVar(&c.logFormat, "log-format", "text", "server log format on stderr: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "server log level: debug, info, warn or error")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM/SIGINT, how long in-flight calls may take to finish before they are cut off")
	fs.IntVar(&c.limits.MaxSessions, "max-sessions", service.DefaultMaxSessions, "most sessions the server holds")
	fs.IntVar(&c.limits.MaxSessionsPerTenant, "max-sessions-per-tenant", service.DefaultMaxSessionsPerTenant, "most sessions one tenant holds (with --auth-tokens)")
	fs.IntVar(&c.limits.MaxEndpoints, "max-endpoints", service.DefaultMaxEndpoints, "most live endpoints (listeners and connections) per session; fixed in a session's log when it is created")
	fs.IntVar(&c.limits.MaxBufferBytes, "max-buffer-bytes", service.DefaultMaxBufferBytes, "largest send_buffer and receive_window a session may ask for, in bytes per connection and direction")
	fs.IntVar(&c.limits.MaxOutboundQueue, "max-outbound-queue", service.DefaultMaxOutboundQueue, "segments a session's outbound queue holds before the oldest is discarded")
	fs.IntVar(&c.limits.MaxMessageBytes, "max-message-bytes", service.DefaultMaxMessageBytes, "largest gRPC request message, in bytes (also the largest HTTP body, times 2 for base64)")
	fs.Int64Var(&c.maxLogBytes, "max-log-bytes", service.DefaultMaxLogBytes, "largest session log, in bytes; past it the session refuses changes")
	fs.IntVar(&c.maxOpenLogs, "max-open-logs", filestore.DefaultMaxOpenLogs, "most session log files the file store keeps open; past it the least recently used idle log's file is closed (after an fsync if needed) and reopened on its next use, so the session count is not bound by the open-file limit (-1: one open file per session)")
	fs.IntVar(&c.limits.MaxPageSize, "max-page-size", service.DefaultMaxPageSize, "largest page_size of List calls")
	fs.IntVar(&c.limits.MaxWatchers, "max-watchers", service.DefaultMaxWatchers, "most concurrent WatchSegments (and following StreamRecords) streams per session")
	fs.DurationVar(&c.sessionTTL, "session-ttl", 0, "ttl of a session created without expire_time or ttl: REALTIME sessions expire that long after creation, VIRTUAL ones when their clock reaches it; expired sessions are removed with their logs (0: never)")
	fs.BoolVar(&c.accessLog, "access-log", false, "log one line per gRPC call (REST requests included): method, session, request_id, code, duration (off by default: under load it is a line per call)")
	fs.StringVar(&c.authTokens, "auth-tokens", "", "file of bearer tokens, one 'TOKEN TENANT' per line (# comments); with it every gRPC call and REST request needs 'authorization: Bearer TOKEN' and sees only its tenant's sessions (health, /healthz, /metrics and /openapi.json stay open); re-read on SIGHUP")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve TLS on both listeners; needs --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&c.insecure, "insecure", false, "allow listening on a non-loopback address without --auth-tokens (anyone who can connect can use every session)")
	fs.BoolVar(&c.debugEndpoints, "debug-endpoints", false, "serve /debug/pprof/ and POST /debug/free-os-memory on the HTTP listener (behind --auth-tokens when given)")
	fs.StringVar(&c.store, "store", "", "where session logs live: empty or 'file' for the file store in --data-dir (the default), or a PostgreSQL URL (postgres://user@host:port/db?sslmode=...) shared by several replicas")
	fs.StringVar(&c.replicaID, "replica-id", "", "with a PostgreSQL store: this replica's name in the lease table; it must differ between live replicas (default: --advertise-addr, so a restarted replica takes its own sessions back at once)")
	fs.StringVar(&c.advertise, "advertise-addr", "", "with a PostgreSQL store: the gRPC address other replicas forward calls to (default: the bound --grpc-addr, with the host name for a wildcard host)")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", 3*time.Second, "with a PostgreSQL store: how long this replica's session leases live without renewal; after it another replica may take its sessions over")
	fs.DurationVar(&c.leaseRenew, "lease-renew", time.Second, "with a PostgreSQL store: how often the leases are renewed (less than --lease-ttl; a third of it tolerates two lost renewals)")
	fs.DurationVar(&c.takeoverEvery, "takeover-interval", time.Second, "with a PostgreSQL store: how often to look for sessions whose owner's lease expired and take them over by replaying their logs (0: only when a call arrives for one)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: tcpstated serve [flags]\n\n"+
			"Serves the tcpstate.v1 API: gRPC (with grpc.health.v1 and server reflection) on --grpc-addr,\n"+
			"and on --http-addr the REST gateway (/v1/...), /openapi.json, /metrics (Prometheus) and /healthz.\n"+
			"Every session is restored from its log in --data-dir at start. SIGTERM or SIGINT stops the\n"+
			"server gracefully: no new calls, in-flight calls finish, logs are synced and closed.\n\n"+
			"Flags (each can also be set by the environment variable shown):\n")
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(fs.Output(), "  --%s (%s, default %q)\n    \t%s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	c.limits.MaxLogBytes = c.maxLogBytes
	for name, v := range map[string]int{
		"max-sessions": c.limits.MaxSessions, "max-sessions-per-tenant": c.limits.MaxSessionsPerTenant, "max-endpoints": c.limits.MaxEndpoints, "max-buffer-bytes": c.limits.MaxBufferBytes,
		"max-outbound-queue": c.limits.MaxOutboundQueue, "max-message-bytes": c.limits.MaxMessageBytes,
		"max-page-size": c.limits.MaxPageSize, "max-watchers": c.limits.MaxWatchers,
	} {
		if v <= 0 {
			return nil, fmt.Errorf("--%s: %d is not positive", name, v)
		}
	}
	if c.maxOpenLogs == 0 || c.maxOpenLogs < -1 {
		return nil, fmt.Errorf("--max-open-logs: %d is neither positive nor -1", c.maxOpenLogs)
	}
	if c.maxLogBytes <= 0 {
		return nil, fmt.Errorf("--max-log-bytes: %d is not positive", c.maxLogBytes)
	}
	if c.leaseTTL <= 0 || c.leaseRenew <= 0 || c.leaseRenew >= c.leaseTTL {
		return nil, fmt.Errorf("--lease-renew (%v) must be positive and less than --lease-ttl (%v)", c.leaseRenew, c.leaseTTL)
	}
	if c.sessionTTL < 0 {
		return nil, fmt.Errorf("--session-ttl: %v is negative", c.sessionTTL)
	}
	if c.takeoverEvery < 0 {
		return nil, fmt.Errorf("--takeover-interval: %v is negative", c.takeoverEvery)
	}
	if err := checkStoreFlag(c.store); err != nil {
		return nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	return c, nil
}
