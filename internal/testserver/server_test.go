package testserver

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestParseListening(t *testing.T) {
	cases := []struct {
		line, grpc, http string
	}{
		{`time=2026-01-01T00:00:00Z level=INFO msg=listening grpc=127.0.0.1:4001 http=127.0.0.1:4002 auth=false`, "127.0.0.1:4001", "127.0.0.1:4002"},
		{`{"time":"x","level":"INFO","msg":"listening","grpc":"[::]:1","http":"[::]:2"}`, "[::]:1", "[::]:2"},
		{`level=INFO msg="listening soon" grpc=a http=b`, "", ""},
		{`{"msg":"listening","grpc":"a"}`, "", ""},
		{`msg=stopped`, "", ""},
		{``, "", ""},
	}
	for _, tc := range cases {
		g, h, ok := parseListening([]byte(tc.line))
		if g != tc.grpc || h != tc.http || ok != (tc.grpc != "") {
			t.Errorf("%q: %q %q %v, want %q %q", tc.line, g, h, ok, tc.grpc, tc.http)
		}
	}
}

func FuzzParseListening(f *testing.F) {
	f.Add([]byte(`level=INFO msg=listening grpc=127.0.0.1:4001 http=127.0.0.1:4002`))
	f.Add([]byte(`{"msg":"listening","grpc":"127.0.0.1:1","http":"127.0.0.1:2"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if g, h, ok := parseListening(line); ok && (g == "" || h == "") {
			t.Fatalf("%q: ok with an empty address (%q, %q)", line, g, h)
		}
	})
}

// The helper's whole cycle against the real binary: start, SIGHUP, kill,
// restart on the same data directory, stop.
func TestStartKillRestartStop(t *testing.T) {
	bin := Tcpstated(t, Race)
	s := StartT(t, Config{Binary: bin, DataDir: t.TempDir(), Args: []string{"--fsync", "never"}})
	if s.GRPCAddr == "" || s.HTTPAddr == "" || s.GRPCAddr == s.HTTPAddr {
		t.Fatalf("addresses %q %q", s.GRPCAddr, s.HTTPAddr)
	}
	if err := s.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if s.Err() == nil {
		t.Fatal("a SIGKILLed server exited 0")
	}
	s2, err := s.Restart()
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Stop(30 * time.Second); err != nil {
		t.Fatalf("%v:\n%s", err, s2.Logs())
	}
	if !strings.Contains(s2.Logs(), "msg=stopped") || s2.Panicked() {
		t.Fatalf("unclean stop:\n%s", s2.Logs())
	}
	s2.Kill() // a no-op once exited
}
