package issue4

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// handshakeStates are the lines both examples print, in order.
var handshakeStates = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^listener sessions/[a-z0-9-]+/endpoints/web: LISTEN$`),
	regexp.MustCompile(`(?m)^connection sessions/[a-z0-9-]+/endpoints/2: SYN-RECEIVED$`),
	regexp.MustCompile(`(?m)^connection sessions/[a-z0-9-]+/endpoints/2: ESTABLISHED$`),
}

func checkStates(t *testing.T, out string) {
	t.Helper()
	at := 0
	for _, re := range handshakeStates {
		loc := re.FindStringIndex(out[at:])
		if loc == nil {
			t.Fatalf("the output lacks %s after byte %d:\n%s", re, at, out)
		}
		at += loc[1]
	}
}

// TestCurlExample runs examples/curl.sh against the binary: the handshake
// with curl alone, printing LISTEN, SYN-RECEIVED and ESTABLISHED.
func TestCurlExample(t *testing.T) {
	need(t, "curl")
	sh := need(t, "sh")
	s := shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sh, filepath.Join(repo, "examples", "curl.sh"), s.HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("curl.sh: %v\n%s", err, out)
	}
	checkStates(t, string(out))
}

// TestNodeExample installs examples/node's packages with npm and runs its
// handshake over gRPC against the binary.
func TestNodeExample(t *testing.T) {
	node := need(t, "node")
	npm := need(t, "npm")
	s := shared(t)
	dir := filepath.Join(repo, "examples", "node")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "grpc-js")); err != nil {
		install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--loglevel=error")
		install.Dir = dir
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("npm install in examples/node: %v\n%s", err, out)
		}
	}
	out, err := exec.CommandContext(ctx, node, filepath.Join(dir, "handshake.js"), s.GRPCAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("node handshake.js: %v\n%s", err, out)
	}
	checkStates(t, string(out))
	for _, want := range []string{"LISTEN -> SYN-RECEIVED (LISTEN_SYN_ACCEPTED)", "SYN-RECEIVED -> ESTABLISHED", "< SYN,ACK seq=1000 ack=101"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
