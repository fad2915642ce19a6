// Package python holds the Python example client; this test runs it
// (with `go test ./...`, so `make test`) against the real binary.
package python

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }

// TestPythonExample generates the stubs from api/proto with gen.sh and
// runs handshake.py over gRPC.
func TestPythonExample(t *testing.T) {
	for _, tool := range []string{"protoc", "grpc_python_plugin", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs it)", tool)
			}
			t.Skipf("%s is not installed (Debian: apt-get install protobuf-compiler protobuf-compiler-grpc libprotobuf-dev python3-grpcio python3-protobuf)", tool)
		}
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-grpcio or python3-protobuf is not installed, and CI must run this test (.ci/run installs them)")
		}
		t.Skip("python3-grpcio or python3-protobuf is not installed")
	}
	if _, err := os.Stat("/usr/include/google/protobuf/duration.proto"); err != nil {
		t.Skip("libprotobuf-dev is not installed (the well-known types' .proto files)")
	}
	gen := filepath.Join(t.TempDir(), "gen")
	if out, err := exec.Command("sh", "gen.sh", gen).CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: t.TempDir(), Args: []string{"--fsync", "never"}})
	cmd := exec.Command("/usr/bin/python3", "handshake.py", srv.GRPCAddr)
	cmd.Env = append(os.Environ(), "TCPSTATED_PY_GEN="+gen)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("handshake.py: %v\n%s", err, out)
	}
	for _, want := range []string{"listener sessions/", ": LISTEN", "< SYN,ACK seq=1000 ack=101",
		"LISTEN -> SYN-RECEIVED (LISTEN_SYN_ACCEPTED)", "SYN-RECEIVED -> ESTABLISHED", ": ESTABLISHED"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
