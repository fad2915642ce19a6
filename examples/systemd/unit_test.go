// Package systemd holds the example systemd unit; this test checks it.
package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }

// TestUnit checks tcpstated.service with systemd-analyze verify (with
// ExecStart pointing at a freshly built binary) and that the binary takes
// its ExecStart flags.
func TestUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed, and CI must run this test (.ci/run installs systemd)")
		}
		t.Skip("systemd-analyze is not installed (Debian: systemd)")
	}
	bin := testserver.Tcpstated(t, false)
	unit, err := os.ReadFile("tcpstated.service")
	if err != nil {
		t.Fatal(err)
	}
	var args, env []string
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			args = strings.Fields(v)
		}
		if v, ok := strings.CutPrefix(l, "Environment="); ok {
			env = append(env, v)
		}
	}
	if len(args) < 2 || args[0] != "/usr/local/bin/tcpstated" || args[1] != "serve" {
		t.Fatalf("ExecStart: %q", args)
	}
	file := filepath.Join(t.TempDir(), "tcpstated.service")
	if err := os.WriteFile(file, bytes.ReplaceAll(unit, []byte("/usr/local/bin/tcpstated"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", "--man=no", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || strings.Contains(stderr.String(), "tcpstated.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	// The flags parse: --help after them exits 0 (a bad flag exits 2).
	run := exec.Command(bin, append(args[1:], "--help")...)
	run.Env = append(os.Environ(), env...)
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
