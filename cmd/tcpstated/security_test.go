package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpstated/tcpstated/service/tenant"
)

// The rule: without --auth-tokens the server listens only on loopback
// addresses, unless --insecure; it says why it refuses, before it opens
// the data directory.
func TestListenAddressNeedsAuthOrLoopback(t *testing.T) {
	cases := []struct {
		addr     string
		auth     bool
		insecure bool
		wantErr  bool
		wantWarn string
	}{
		{"127.0.0.1:0", false, false, false, ""},
		{"127.0.0.2:8080", false, false, false, ""},
		{"[::1]:0", false, false, false, ""},
		{"localhost:0", false, false, false, ""},
		{"0.0.0.0:0", false, false, true, ""},
		{":8080", false, false, true, ""},
		{"[::]:0", false, false, true, ""},
		{"192.0.2.1:0", false, false, true, ""},
		{"0.0.0.0:0", false, true, false, "without authentication"},
		{"0.0.0.0:0", true, false, false, "clear text"},
	}
	for _, tc := range cases {
		var logs bytes.Buffer
		s := &security{log: slog.New(slog.NewTextHandler(&logs, nil)), insecure: tc.insecure}
		if tc.auth {
			s.auth = mustAuth(t)
		}
		err := s.checkAddr("gRPC", tc.addr)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s auth=%v insecure=%v: err %v, want error %v", tc.addr, tc.auth, tc.insecure, err, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--auth-tokens") {
			t.Errorf("%s: the refusal does not say what to do: %v", tc.addr, err)
		}
		if tc.wantWarn != "" && !strings.Contains(logs.String(), tc.wantWarn) {
			t.Errorf("%s: log %q, want a warning %q", tc.addr, logs.String(), tc.wantWarn)
		}
	}

	var stderr bytes.Buffer
	code := run([]string{"serve", "--grpc-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "refusing to serve gRPC on 0.0.0.0:0") {
		t.Fatalf("serve on 0.0.0.0 without auth: exit %d, %q", code, stderr.String())
	}
}

func TestTLSFlagsGoTogether(t *testing.T) {
	if _, err := parseServeFlags([]string{"--tls-cert", "c.pem"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Fatalf("--tls-cert alone: %v", err)
	}
	t.Setenv("TCPSTATED_AUTH_TOKENS", "/etc/tokens")
	t.Setenv("TCPSTATED_INSECURE", "true")
	c, err := parseServeFlags(nil, io.Discard)
	if err != nil || c.authTokens != "/etc/tokens" || !c.insecure {
		t.Fatalf("environment: %+v %v", c, err)
	}
}

func mustAuth(t *testing.T) *tenant.Authenticator {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("a-token-of-sixteen-chars alice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := tenant.NewAuthenticator(p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
