package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/script"
)

// TestRunScriptMatchesTheLocalRunner: every script of the library gives
// the same verdict, line by line, through the service (a session that
// logs every call) as on a bare engine (tcpstated script run).
func TestRunScriptMatchesTheLocalRunner(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "scripts", "*.pkt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts in testdata/scripts (%v)", err)
	}
	e := newEnv(t, Config{})
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		local, err := script.Run(src, script.Options{Name: name, Compare: script.CompareSemantic})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rep, err := e.scripts().RunScript(ctx(t), &pb.RunScriptRequest{Script: string(src), Name: name, Compare: "SEMANTIC"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rep.Passed != local.Passed || rep.Failure != local.Failure || len(rep.Lines) != len(local.Lines) {
			t.Errorf("%s: service passed %t (%q), local passed %t (%q)", name, rep.Passed, rep.Failure, local.Passed, local.Failure)
			continue
		}
		// A SYN cookie is a keyed hash of the session's secret key, which
		// differs (the local runner's is zero): only the numbers differ.
		cookies := strings.Contains(string(src), "tcpstated_syn_cookies")
		for i, l := range local.Lines {
			if s := rep.Lines[i]; s.Status != l.Status || (s.Actual != l.Actual && !cookies) || s.Line != uint32(l.Line) {
				t.Errorf("%s line %d: service %s %q, local %s %q", name, l.Line, s.Status, s.Actual, l.Status, l.Actual)
			}
		}
		if v := e.verify(rep.Session); !v.Identical {
			t.Errorf("%s: the session's log does not re-run identically: %v", name, v.FirstDifference)
		}
	}
}
