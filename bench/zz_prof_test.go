package bench

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestScratchAllocs(t *testing.T) {
	ctx := context.Background()
	p, err := startProcess(ctx, "x", os.Getenv("EXP"), "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--fsync", "never", "--debug-endpoints")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	cs, _ := dial(p.grpcAddr, 4)
	setupSessions(ctx, cs[0], sessionNames("x", 8))
	get := func(path string) {
		r, err := http.Get("http://" + p.httpAddr + "/debug/pprof/allocs")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		os.WriteFile(path, b, 0o644)
	}
	streamLoad(ctx, cs, sessionNames("x", 8), 64, newWindow(0, 500*time.Millisecond))
	get("/tmp/wt/a0.prof")
	r := streamLoad(ctx, cs, sessionNames("x", 8), 64, newWindow(0, 3*time.Second))
	get("/tmp/wt/a1.prof")
	t.Logf("segments %d", r.ops)
}
