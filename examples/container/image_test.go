// Package container holds the container image example; this test builds
// the image with podman and checks that it serves.
package container

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImage builds the image with build.sh (podman, offline), exports the
// filesystem of a container made from it, starts the server in it with
// chroot (`podman run` fails on these machines) and checks /healthz and
// --version.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed, and CI must run this test (.ci/run installs it)")
		}
		t.Skip("podman is not installed (Debian: apt-get install podman)")
	}
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	if testing.Short() {
		t.Skip("builds a static binary and an image")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	image := fmt.Sprintf("localhost/tcpstated-test:%d", os.Getpid())
	if out, err := exec.CommandContext(ctx, "sh", "build.sh", image).CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", image).Run() })
	out, err := exec.CommandContext(ctx, "podman", "create", image).Output()
	if err != nil {
		t.Fatalf("podman create: %v", err)
	}
	cid := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", cid).Run() })
	root := t.TempDir()
	export := exec.CommandContext(ctx, "podman", "export", cid)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", root)
	pipe, err := export.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	if err := export.Wait(); err != nil {
		t.Fatalf("podman export: %v", err)
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if _, err := os.Stat(filepath.Join(root, "tcpstated")); err != nil {
		t.Fatalf("the image has no /tcpstated: %v (it has %v)", err, names)
	}
	if out, err := exec.CommandContext(ctx, "chroot", root, "/tcpstated", "--version").Output(); err != nil || !strings.HasPrefix(string(out), "tcpstated ") {
		t.Fatalf("--version in the image: %q %v", out, err)
	}

	// The image's entrypoint flags, on loopback ports of this machine.
	grpcPort, httpPort := freePort(t), freePort(t)
	srv := exec.CommandContext(ctx, "chroot", root, "/tcpstated", "serve", "--grpc-addr=0.0.0.0:"+grpcPort,
		"--http-addr=127.0.0.1:"+httpPort, "--data-dir=/data", "--insecure")
	logs, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "msg=listening") {
				close(listening)
			}
		}
		io.Copy(io.Discard, logs)
	}()
	select {
	case <-listening:
	case <-time.After(60 * time.Second):
		t.Fatalf("the server in the image did not start")
	}
	resp, err := http.Get("http://127.0.0.1:" + httpPort + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, b)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
