package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/testserver"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// and its key, and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tcpstated test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

const (
	aliceToken = "alice-0123456789abcdef"
	bobToken   = "bob-0123456789abcdef00"
	carolToken = "carol-0123456789abcdef"
)

func withToken(tok string) context.Context {
	ctx := context.Background()
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	return ctx
}

// The rules, through the binary: with --auth-tokens and --tls-cert, both
// listeners serve TLS only; every gRPC call and REST request needs a
// bearer token of the file, except health, /healthz, /metrics and
// /openapi.json; a tenant sees another's session as missing over gRPC,
// REST and the file routes; SIGHUP reloads the file, and a bad file keeps
// the tokens in effect.
func TestAuthTokensAndTLSThroughTheBinary(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, tokens, aliceToken+" alice\n"+bobToken+" bob\n")
	srv := testserver.StartT(t, testserver.Config{Binary: serverBin, DataDir: t.TempDir(), Args: []string{"--fsync", "never",
		"--auth-tokens", tokens, "--tls-cert", certFile, "--tls-key", keyFile}})
	defer srv.Stop(30 * time.Second)

	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	conn, err := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc := pb.NewSessionServiceClient(conn)

	// gRPC.
	if _, err := sc.ListSessions(withToken(""), &pb.ListSessionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without a token: %v", err)
	}
	if _, err := sc.ListSessions(withToken("wrong-token-0123456789"), &pb.ListSessionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC with a wrong token: %v", err)
	}
	if _, err := sc.CreateSession(withToken(aliceToken), &pb.CreateSessionRequest{SessionId: "a1"}); err != nil {
		t.Fatalf("alice creates: %v", err)
	}
	if _, err := sc.GetSession(withToken(bobToken), &pb.GetSessionRequest{Name: "sessions/a1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("bob reads alice's session: %v", err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(withToken(""), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without a token: %v", err)
	}
	plain, _ := grpc.NewClient(srv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer plain.Close()
	pctx, cancel := context.WithTimeout(withToken(aliceToken), 5*time.Second)
	defer cancel()
	if _, err := pb.NewSessionServiceClient(plain).ListSessions(pctx, &pb.ListSessionsRequest{}); err == nil {
		t.Fatal("plain-text gRPC to the TLS listener worked")
	}

	// REST, through the gateway's TLS connection to the gRPC listener.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: 30 * time.Second}
	get := func(path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+srv.HTTPAddr+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/sessions", "", http.StatusUnauthorized},
		{"/v1/sessions", "wrong-token-0123456789", http.StatusUnauthorized},
		{"/v1/sessions/a1", aliceToken, http.StatusOK},
		{"/v1/sessions/a1", bobToken, http.StatusNotFound},
		{"/v1/sessions/a1/records", bobToken, http.StatusNotFound},
		{"/v1/sessions/a1/pcap", "", http.StatusUnauthorized},
		{"/v1/sessions/a1/pcap", bobToken, http.StatusNotFound},
		{"/v1/sessions/a1/pcap", aliceToken, http.StatusOK},
		{"/healthz", "", http.StatusOK},
		{"/metrics", "", http.StatusOK},
		{"/openapi.json", "", http.StatusOK},
		{"/ui/", "", http.StatusOK},
	} {
		if code, body := get(tc.path, tc.token); code != tc.want {
			t.Errorf("GET %s with token %q: %d %s, want %d", tc.path, tc.token, code, body, tc.want)
		}
	}
	if code, body := get("/v1/sessions", bobToken); code != 200 || strings.Contains(body, "a1") {
		t.Errorf("bob lists: %d %s", code, body)
	}
	// Each tenant has its own session IDs: bob's sessions/a1 is his own
	// (ALREADY_EXISTS here would tell him alice holds one).
	if _, err := sc.CreateSession(withToken(bobToken), &pb.CreateSessionRequest{SessionId: "a1", Session: &pb.Session{Options: &pb.SessionOptions{ClockMode: pb.ClockMode_CLOCK_MODE_REALTIME}}}); err != nil {
		t.Fatalf("bob creates his own sessions/a1: %v", err)
	}
	for _, tc := range []struct{ token, clock string }{{aliceToken, "CLOCK_MODE_VIRTUAL"}, {bobToken, "CLOCK_MODE_REALTIME"}} {
		if code, body := get("/v1/sessions/a1", tc.token); code != http.StatusOK || !strings.Contains(body, tc.clock) {
			t.Errorf("GET /v1/sessions/a1 as %s: %d %s, want its own session (%s)", tc.token[:5], code, body, tc.clock)
		}
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + srv.HTTPAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP to the TLS listener worked")
		}
	}

	// SIGHUP: carol in, bob out.
	writeFile(t, tokens, aliceToken+" alice\n"+carolToken+" carol\n")
	srv.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Count(srv.Logs(), "auth tokens loaded") == 2 })
	if _, err := sc.ListSessions(withToken(carolToken), &pb.ListSessionsRequest{}); err != nil {
		t.Fatalf("carol after reload: %v", err)
	}
	if _, err := sc.ListSessions(withToken(bobToken), &pb.ListSessionsRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bob after reload: %v", err)
	}
	writeFile(t, tokens, "short carol\n")
	srv.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(srv.Logs(), "reloading the auth tokens failed") })
	if _, err := sc.ListSessions(withToken(carolToken), &pb.ListSessionsRequest{}); err != nil {
		t.Fatalf("carol after a bad reload: %v", err)
	}
	if srv.Panicked() {
		t.Fatal(srv.Logs())
	}
}

// The rule: without --auth-tokens the binary refuses a non-loopback
// address and says why; --insecure lets it serve, with a warning.
func TestNonLoopbackNeedsAuthOrInsecure(t *testing.T) {
	_, err := testserver.Start(testserver.Config{Binary: serverBin, DataDir: t.TempDir(), Args: []string{"--http-addr", "0.0.0.0:0"}})
	if err == nil || !strings.Contains(err.Error(), "refusing to serve HTTP on 0.0.0.0:0") {
		t.Fatalf("0.0.0.0 without auth: %v", err)
	}
	// The helper puts its own loopback flags first; later flags win.
	srv := testserver.StartT(t, testserver.Config{Binary: serverBin, DataDir: t.TempDir(), Args: []string{"--http-addr", "0.0.0.0:0", "--insecure"}})
	defer srv.Stop(30 * time.Second)
	waitFor(t, func() bool {
		return strings.Contains(srv.Logs(), "serving without authentication on a non-loopback address")
	})
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
