package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
	"github.com/tcpstated/tcpstated/internal/testserver"
)

// TestServe runs the real binary, built once.
func TestMain(m *testing.M) { testserver.Main(m) }

func TestFlags(t *testing.T) {
	t.Setenv("TCPSTATED_GRPC_ADDR", "127.0.0.1:1")
	t.Setenv("TCPSTATED_MAX_SESSIONS", "7")
	t.Setenv("TCPSTATED_DATA_DIR", "/from/env")
	cases := []struct {
		name    string
		args    []string
		check   func(*serveConfig) bool
		wantErr string
	}{
		{"defaults and environment", nil, func(c *serveConfig) bool {
			return c.grpcAddr == "127.0.0.1:1" && c.httpAddr == "127.0.0.1:8080" && c.dataDir == "/from/env" &&
				c.limits.MaxSessions == 7 && c.fsync == "always" && c.maxOpenLogs == 1024
		}, ""},
		{"open log files unbounded", []string{"--max-open-logs", "-1"}, func(c *serveConfig) bool { return c.maxOpenLogs == -1 }, ""},
		{"no open log files", []string{"--max-open-logs", "0"}, nil, "max-open-logs"},
		{"a flag beats the environment", []string{"--data-dir", "d", "--grpc-addr=:0"}, func(c *serveConfig) bool {
			return c.dataDir == "d" && c.grpcAddr == ":0"
		}, ""},
		{"non-positive limit", []string{"--max-endpoints", "0"}, nil, "max-endpoints"},
		{"stray argument", []string{"extra"}, nil, "unexpected"},
		{"unknown flag", []string{"--nope"}, nil, "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServeFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
	t.Setenv("TCPSTATED_MAX_SESSIONS", "many")
	if _, err := parseServeFlags(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "TCPSTATED_MAX_SESSIONS") {
		t.Fatalf("bad environment value: %v", err)
	}
	var help bytes.Buffer
	if code := run([]string{"serve", "--help"}, io.Discard, &help); code != 0 || !strings.Contains(help.String(), "TCPSTATED_HTTP_ADDR") {
		t.Fatalf("--help: exit %d, %q", code, help.String())
	}
	if code := run([]string{"frobnicate"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

func post(t *testing.T, url, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe starts the binary on free ports and uses every surface: REST,
// gRPC with health and reflection, /openapi.json, /metrics, /healthz; then
// stops it and reads the log offline.
func TestServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created on first run
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: dir, Args: []string{"--fsync", "never"}})
	g, base := srv.GRPCAddr, "http://"+srv.HTTPAddr

	post(t, base+"/v1/sessions?session_id=demo", `{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000}}`)
	post(t, base+"/v1/sessions/demo/endpoints", `{"listen":{"localAddress":"10.0.0.1:80"}}`)
	r := post(t, base+"/v1/sessions/demo/segments", `{"fields":{"sourceAddress":"10.0.0.2:40000","destinationAddress":"10.0.0.1:80","seq":100,"flags":["SYN"],"window":65535}}`)
	segs := r["outputs"].(map[string]any)["segments"].([]any)
	if sa := segs[0].(map[string]any); sa["ack"] != float64(101) || len(sa["flags"].([]any)) != 2 {
		t.Fatalf("SYN-ACK: %v", sa)
	}
	post(t, base+"/v1/sessions/demo/segments", `{"fields":{"sourceAddress":"10.0.0.2:40000","destinationAddress":"10.0.0.1:80","seq":101,"ack":1001,"flags":["ACK"],"window":65535,"payloadText":"hello"}}`)
	code, body := get(t, base+"/v1/sessions/demo/endpoints/2")
	if code != 200 || !strings.Contains(body, `"stateName":"ESTABLISHED"`) || !strings.Contains(body, `"bytesReadable":5`) {
		t.Fatalf("GET endpoint: %d %s", code, body)
	}
	if code, body = get(t, base+"/v1/sessions/nope"); code != http.StatusNotFound {
		t.Fatalf("unknown session: %d %s", code, body)
	}
	if code, body = get(t, base+"/v1/sessions/demo/records:stream"); code != 200 || strings.Count(body, "\n") < 1 || !strings.Contains(body, `"result"`) {
		t.Fatalf("record stream: %d %s", code, body)
	}
	if code, body = get(t, base+"/openapi.json"); code != 200 || !strings.Contains(body, `"swagger"`) {
		t.Fatalf("/openapi.json: %d", code)
	}
	if code, body = get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body = get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "tcpstated_sessions 1") ||
		!strings.Contains(body, `tcpstated_grpc_calls_total{code="OK",method="/tcpstate.v1.SegmentService/SubmitSegment"} 2`) ||
		!strings.Contains(body, "tcpstated_segments_in_total 2") {
		t.Fatalf("/metrics: %d %s", code, body)
	}

	conn, err := grpc.NewClient(g, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "tcpstate.v1.SessionService"})
	if err != nil || hc.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hc, err)
	}
	rs, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	lr, err := rs.Recv()
	if err != nil || !strings.Contains(lr.String(), "tcpstate.v1.SegmentService") {
		t.Fatalf("reflection: %v %v", lr, err)
	}
	rs.CloseSend()
	s, err := pb.NewSessionServiceClient(conn).GetSession(ctx, &pb.GetSessionRequest{Name: "sessions/demo"})
	if err != nil || s.Session.RecordCount != 7 {
		t.Fatalf("gRPC GetSession: %v %v", s, err)
	}
	if err := srv.Stop(30 * time.Second); err != nil || !strings.Contains(srv.Logs(), "msg=stopped") {
		t.Fatalf("unclean stop (%v):\n%s", err, srv.Logs())
	}

	// Offline: the log dumps and verifies.
	var out, errb bytes.Buffer
	file := filepath.Join(dir, "demo.log")
	if code := run([]string{"log", "verify", file}, &out, &errb); code != 0 || !strings.Contains(out.String(), "identical") {
		t.Fatalf("log verify: exit %d: %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"log", "dump", file}, &out, &errb); code != 0 || strings.Count(out.String(), "\n") != 7 || !strings.Contains(out.String(), "LISTEN -> SYN-RECEIVED") {
		t.Fatalf("log dump: exit %d: %s", code, out.String())
	}
	// A torn log fails verification.
	fi, _ := os.Stat(file)
	os.Truncate(file, fi.Size()-3)
	out.Reset()
	if code := run([]string{"log", "verify", file}, &out, &errb); code != 1 || !strings.Contains(out.String(), "damaged") {
		t.Fatalf("log verify of a torn log: exit %d: %s", code, out.String())
	}
	if code := run([]string{"log", "verify", filepath.Join(dir, "missing.log")}, &out, &errb); code != 1 {
		t.Fatalf("log verify of a missing file: exit %d", code)
	}
}
