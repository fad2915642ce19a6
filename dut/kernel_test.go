package dut

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tcpstated/tcpstated/script"
	"github.com/tcpstated/tcpstated/script/duttarget"
)

// TestKernelAsDUT: the Linux kernel's sockets, in a namespace of their
// own behind the DUT protocol, pass the scripts the kernel passes as the
// kernel target (semantic compare: the kernel's window and options are
// its own), as a server and as a client.
func TestKernelAsDUT(t *testing.T) {
	if why := KernelAvailable(); why != "" {
		t.Skipf("the Linux kernel as a DUT %s; skipping", why)
	}
	k := NewKernel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis, k) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		k.Close()
	})
	for _, name := range []string{"connection-refused.pkt", "close-passive.pkt", "rst-established.pkt"} {
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", name))
			if err != nil {
				t.Fatal(err)
			}
			var rep *script.Report
			for range attempts {
				rep, err = script.RunDUT(conn, src, script.Options{Name: name, Compare: script.CompareSemantic}, duttarget.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if rep.Passed {
					return
				}
			}
			var b strings.Builder
			_ = rep.WriteText(&b, true)
			t.Errorf("failed %d times; the last:\n%s", attempts, b.String())
		})
	}
	// It is the kernel: its TCP_INFO reports the MSS it assumes when the
	// ACK carries no option (536), as the kernel target does.
	t.Run("handshake-passive.pkt", func(t *testing.T) {
		src, err := os.ReadFile(filepath.Join("..", "testdata", "scripts", "handshake-passive.pkt"))
		if err != nil {
			t.Fatal(err)
		}
		var rep *script.Report
		for range attempts {
			rep, err = script.RunDUT(conn, src, script.Options{Name: "handshake-passive.pkt", Compare: script.CompareSemantic}, duttarget.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(rep.Failure, "tcpi_rcv_mss: expected 1460, got 536") {
				return
			}
		}
		t.Errorf("want the kernel's tcpi_rcv_mss of 536, got:\n%s", rep.Text())
	})
}
