package issue4

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptRunCLI runs the script library the way a course's CI would:
// `tcpstated script run --compare=semantic --json testdata/scripts/*.pkt`
// prints one JSON report per script, every one passed, and exits 0; a
// script that fails makes it exit 1 with that report's failure.
func TestScriptRunCLI(t *testing.T) {
	bin := binary(t)
	files, err := filepath.Glob(filepath.Join(repo, "testdata", "scripts", "*.pkt"))
	if err != nil || len(files) < 40 {
		t.Fatalf("the library has %d scripts (%v), want at least 40", len(files), err)
	}
	cmd := exec.Command(bin, append([]string{"script", "run", "--compare=semantic", "--json"}, files...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script run: %v\n%s", err, stderr.String())
	}
	type report struct {
		Passed  bool
		Script  string
		Compare string
		Failure string
		Lines   []json.RawMessage
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	n := 0
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("report %d is not JSON: %v", n, err)
		}
		if !r.Passed || r.Compare != "semantic" || len(r.Lines) == 0 || r.Script != files[n] {
			t.Errorf("%s: passed %t compare %q failure %q (%d lines)", r.Script, r.Passed, r.Compare, r.Failure, len(r.Lines))
		}
		n++
	}
	if n != len(files) {
		t.Fatalf("%d reports for %d scripts", n, len(files))
	}

	// A wrong expectation: exit 1, and the text report says why.
	src, err := os.ReadFile(filepath.Join(repo, "testdata", "scripts", "handshake-passive.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "wrong.pkt")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(src), "> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "script", "run", "--compare=semantic", bad).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "FAIL") {
		t.Fatalf("a failing script: %v\n%s", err, out)
	}
}
