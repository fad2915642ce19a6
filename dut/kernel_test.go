package dut

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	conn := serveStack(t, NewKernel())
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
