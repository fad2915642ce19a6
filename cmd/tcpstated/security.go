package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpstated/tcpstated/service/tenant"
)

// security is what --auth-tokens, --tls-cert/--tls-key, --insecure and
// --debug-endpoints make of the server:
//
//   - with --auth-tokens, the gRPC interceptors and an HTTP middleware
//     require a bearer token and give each call its tenant; the service is
//     told to require tenants (service/auth.go, service/tenant.go); SIGHUP
//     re-reads the file;
//   - without it, the server listens only on loopback addresses, unless
//     --insecure is given;
//   - with --tls-cert, both listeners serve TLS, and the REST gateway's
//     loopback connection to the gRPC listener uses TLS too, trusting
//     exactly the server's own certificate.
type security struct {
	log            *slog.Logger
	auth           *tenant.Authenticator // nil without --auth-tokens
	authFile       string
	tls            *tls.Config // nil without --tls-cert
	leaf           []byte      // the server's certificate (DER), for the gateway's dial
	insecure       bool
	debugEndpoints bool
}

func newSecurity(c *serveConfig, logger *slog.Logger) (*security, error) {
	s := &security{log: logger, authFile: c.authTokens, insecure: c.insecure, debugEndpoints: c.debugEndpoints}
	if c.authTokens != "" {
		a, err := tenant.NewAuthenticator(c.authTokens, logger)
		if err != nil {
			return nil, fmt.Errorf("--auth-tokens: %w", err)
		}
		s.auth = a
	}
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		s.leaf = cert.Certificate[0]
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// grpcOptions are the gRPC server's credentials and auth interceptors (they
// run after the ones already given, so metrics count refused calls).
func (s *security) grpcOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	if s.auth != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(s.auth.UnaryInterceptor()), grpc.ChainStreamInterceptor(s.auth.StreamInterceptor()))
	}
	return opts
}

// gatewayCredentials are the REST gateway's credentials for its loopback
// connection to the gRPC listener. With TLS it accepts exactly the
// server's own certificate, whatever names the certificate holds.
func (s *security) gatewayCredentials() credentials.TransportCredentials {
	if s.tls == nil {
		return insecure.NewCredentials()
	}
	leaf := s.leaf
	return credentials.NewTLS(&tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the exact match below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
				return errors.New("the gRPC listener did not present this server's certificate")
			}
			return nil
		},
	})
}

// openPath reports whether an HTTP path needs no token. The web view's
// static files (/ui/) are open: a browser cannot send a token when it
// navigates to the page, and the files hold no data; the API calls the
// page makes carry the token the user gives it.
func openPath(p string) bool {
	switch p {
	case "/healthz", "/metrics", "/openapi.json", "/ui":
		return true
	}
	return strings.HasPrefix(p, "/ui/")
}

// httpHandler wraps the HTTP handler: debug endpoints when asked, then
// the token check.
func (s *security) httpHandler(h http.Handler) http.Handler {
	if s.debugEndpoints {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		// Return freed heap to the OS at once, so a test reading the
		// process's RSS sees what the server holds, not what the Go
		// runtime has yet to scavenge.
		mux.HandleFunc("POST /debug/free-os-memory", func(w http.ResponseWriter, r *http.Request) {
			debug.FreeOSMemory()
			w.Write([]byte("ok\n"))
		})
		mux.Handle("/", h)
		h = mux
	}
	if s.auth != nil {
		h = s.auth.HTTPMiddleware(openPath, h)
	}
	return h
}

// serveHTTP serves the HTTP listener, with TLS when configured.
func (s *security) serveHTTP(srv *http.Server, lis net.Listener) error {
	if s.tls == nil {
		return srv.Serve(lis)
	}
	srv.TLSConfig = s.tls.Clone()
	return srv.ServeTLS(lis, "", "")
}

// checkAddr refuses a non-loopback listen address without --auth-tokens
// unless --insecure, before anything is opened, and warns about the risky
// combinations it lets through.
func (s *security) checkAddr(what, addr string) error {
	loopback := loopbackAddr(addr)
	switch {
	case s.auth == nil && !loopback && !s.insecure:
		return fmt.Errorf("refusing to serve %s on %s, which is not a loopback address, without --auth-tokens: "+
			"anyone who can connect could use every session; give --auth-tokens FILE, or --insecure to serve without authentication",
			what, addr)
	case s.auth == nil && !loopback:
		s.log.Warn("serving without authentication on a non-loopback address (--insecure): anyone who can connect can use every session", "listener", what, "addr", addr)
	case s.auth != nil && s.tls == nil && !loopback:
		s.log.Warn("bearer tokens travel in clear text: serve TLS with --tls-cert and --tls-key", "listener", what, "addr", addr)
	}
	return nil
}

// loopbackAddr reports whether every address host:port names is a
// loopback address. An empty host (all interfaces) is not.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return false
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// announce logs the security settings once the listeners are up.
func (s *security) announce() {
	auth := "off (loopback only unless --insecure)"
	if s.auth != nil {
		auth = "bearer tokens from " + s.authFile
	} else if s.insecure {
		auth = "off (--insecure)"
	}
	tlsMode := "off"
	if s.tls != nil {
		tlsMode = "on"
	}
	s.log.Info("security", "auth", auth, "tls", tlsMode, "debug_endpoints", s.debugEndpoints)
}

// watchReload re-reads the token file on SIGHUP until ctx ends.
func (s *security) watchReload(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if s.auth == nil {
					s.log.Info("SIGHUP: nothing to reload (no --auth-tokens)")
					continue
				}
				if err := s.auth.Reload(); err != nil {
					s.log.Error("SIGHUP: reloading the auth tokens failed; the previous tokens stay in effect", "err", strings.TrimSpace(err.Error()))
				}
			}
		}
	}()
}
