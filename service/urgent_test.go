package service

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestScriptUrgentDataIsLogged: a script that reads and sends urgent data
// out of band (recv and send with MSG_OOB, SO_OOBINLINE) passes through
// the service, and its session's log, kept, re-runs identically after a
// restart: the urgent calls are logged inputs (UrgentInput).
func TestScriptUrgentDataIsLogged(t *testing.T) {
	e := newEnv(t, Config{})
	src, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", "urgent-oob.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.scripts().RunScript(ctx(t), &pb.RunScriptRequest{Script: string(src), Name: "urgent-oob.pkt", KeepSession: proto.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.Session == "" {
		t.Fatalf("urgent-oob.pkt through the service: passed %t, session %q, failure %q", rep.Passed, rep.Session, rep.Failure)
	}
	e.restart()
	if v := e.verify(rep.Session); !v.Identical {
		t.Fatalf("the re-run of %s differs from its log: %v", rep.Session, v.FirstDifference)
	}
}
