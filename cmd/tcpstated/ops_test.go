package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

func postCode(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// recordCount is a session's record_count over REST.
func recordCount(t *testing.T, base, session string) float64 {
	t.Helper()
	code, body := get(t, base+"/v1/sessions/"+session)
	if code != 200 {
		t.Fatalf("GET session: %d %s", code, body)
	}
	i := strings.Index(body, `"recordCount":`)
	if i < 0 {
		t.Fatalf("no recordCount in %s", body)
	}
	var n float64
	rest := strings.TrimLeft(body[i+len(`"recordCount":`):], `"`)
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + float64(c-'0')
	}
	return n
}

// TestRequestIDRetry: a retried SubmitSegment (and AdvanceClock, SendData)
// with the same request_id returns the first response and appends nothing,
// also after a restart, when the answer comes from the log.
func TestRequestIDRetry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: dir, Args: []string{"--fsync", "never"}})
	base := "http://" + srv.HTTPAddr

	post(t, base+"/v1/sessions?session_id=rid", `{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000}}`)
	post(t, base+"/v1/sessions/rid/endpoints", `{"listen":{"localAddress":"10.0.0.1:80"},"requestId":"listen-1"}`)
	syn := `{"requestId":"syn-1","fields":{"sourceAddress":"10.0.0.2:40000","destinationAddress":"10.0.0.1:80","seq":100,"flags":["SYN"],"window":65535}}`
	_, first := postCode(t, base+"/v1/sessions/rid/segments", syn)
	n := recordCount(t, base, "rid")
	code, again := postCode(t, base+"/v1/sessions/rid/segments", syn)
	if code != 200 || again != first {
		t.Fatalf("repeat: %d\n%s\nfirst:\n%s", code, again, first)
	}
	if m := recordCount(t, base, "rid"); m != n {
		t.Fatalf("the repeat appended: %v records, then %v", n, m)
	}
	// Without an ID the same segment is a second input (a duplicate SYN).
	postCode(t, base+"/v1/sessions/rid/segments", strings.Replace(syn, `"requestId":"syn-1",`, "", 1))
	if m := recordCount(t, base, "rid"); m != n+2 {
		t.Fatalf("a segment without request_id: %v records, want %v", m, n+2)
	}
	adv := `{"by":"1s","requestId":"tick-1"}`
	_, firstAdv := postCode(t, base+"/v1/sessions/rid:advanceClock", adv)
	_, againAdv := postCode(t, base+"/v1/sessions/rid:advanceClock", adv)
	if !strings.Contains(firstAdv, `"clock":"1s"`) || againAdv != firstAdv {
		t.Fatalf("advanceClock repeat moved the clock again:\n%s\n%s", firstAdv, againAdv)
	}
	if code, body := postCode(t, base+"/v1/sessions/rid:advanceClock", `{"by":"1s","requestId":"has space"}`); code != 400 || !strings.Contains(body, "request_id") {
		t.Fatalf("bad request_id: %d %s", code, body)
	}
	n = recordCount(t, base, "rid")
	// CreateSession with a request_id and no session_id: a repeat returns
	// the same session.
	mk := post(t, base+"/v1/sessions?request_id=mk-1", `{}`)["session"].(map[string]any)["name"]
	if again := post(t, base+"/v1/sessions?request_id=mk-1", `{}`)["session"].(map[string]any)["name"]; again != mk {
		t.Fatalf("CreateSession repeat: %v, first %v", again, mk)
	}

	// After a restart the IDs come back from the log.
	srv2, err := srv.Restart()
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + srv2.HTTPAddr
	code, afterSyn := postCode(t, base+"/v1/sessions/rid/segments", syn)
	if code != 200 || !strings.Contains(afterSyn, `"SYN"`) || !strings.Contains(afterSyn, `"ack":101`) {
		t.Fatalf("repeat after restart: %d %s", code, afterSyn)
	}
	_, afterAdv := postCode(t, base+"/v1/sessions/rid:advanceClock", adv)
	if !strings.Contains(afterAdv, `"clock":"1s"`) {
		t.Fatalf("advanceClock repeat after restart: %s", afterAdv)
	}
	if m := recordCount(t, base, "rid"); m != n {
		t.Fatalf("repeats after a restart appended: %v records, then %v", n, m)
	}
	if again := post(t, base+"/v1/sessions?request_id=mk-1", `{}`)["session"].(map[string]any)["name"]; again != mk {
		t.Fatalf("CreateSession repeat after a restart: %v, first %v", again, mk)
	}
	if _, body := get(t, base+"/v1/sessions"); strings.Count(body, `"name":"sessions/`) != 2 {
		t.Fatalf("sessions after the repeats: %s", body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "tcpstated_request_id_repeats_total 3") {
		t.Fatalf("/metrics: repeats not counted: %s", grepLines(body, "repeats"))
	}
	if err := srv2.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv2.Logs())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSessionExpiry: sessions past their TTL are removed with their logs,
// on the wall clock (expire_time) and on a VIRTUAL session's own clock
// (ttl, and the server default --session-ttl); the expiry survives a
// restart; RunScript's keep_session decides what becomes of its session.
func TestSessionExpiry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: dir,
		Args: []string{"--fsync", "never", "--session-ttl", "30s"}})
	base := "http://" + srv.HTTPAddr

	wall := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	post(t, base+"/v1/sessions?session_id=wall", `{"expireTime":"`+wall+`"}`)
	v := post(t, base+"/v1/sessions?session_id=virt", `{"ttl":"5s"}`)
	if v["session"].(map[string]any)["expireClock"] != "5s" {
		t.Fatalf("ttl on a VIRTUAL session: %v", v)
	}
	d := post(t, base+"/v1/sessions?session_id=dflt", `{}`)
	if d["session"].(map[string]any)["expireClock"] != "30s" {
		t.Fatalf("--session-ttl on a VIRTUAL session: %v", d)
	}
	if code, body := postCode(t, base+"/v1/sessions?session_id=bad", `{"ttl":"-1s"}`); code != 400 || !strings.Contains(body, `"field":"session.ttl"`) {
		t.Fatalf("negative ttl: %d %s", code, body)
	}
	script := `0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
`
	if code, body := postCode(t, base+"/v1/scripts:run", `{"script":`+jsonString(script)+`,"sessionId":"dropped","keepSession":false}`); code != 200 || !strings.Contains(body, `"passed":true`) {
		t.Fatalf("RunScript keepSession false: %d %s", code, body)
	}
	if code, _ := get(t, base+"/v1/sessions/dropped"); code != 404 {
		t.Fatalf("keepSession false: the session is still there (%d)", code)
	}
	postCode(t, base+"/v1/scripts:run", `{"script":`+jsonString(script)+`,"sessionId":"kept","keepSession":true}`)
	if code, body := get(t, base+"/v1/sessions/kept"); code != 200 || strings.Contains(body, `"expireClock":"`) {
		t.Fatalf("keepSession true: %d %s", code, body)
	}

	// The virtual session's expiry holds across a restart.
	srv, err := srv.Restart()
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + srv.HTTPAddr
	if code, body := get(t, base+"/v1/sessions/virt"); code != 200 || !strings.Contains(body, `"expireClock":"5s"`) {
		t.Fatalf("after restart: %d %s", code, body)
	}
	post(t, base+"/v1/sessions/virt:advanceClock", `{"by":"4s"}`)
	time.Sleep(1200 * time.Millisecond)
	if code, _ := get(t, base+"/v1/sessions/virt"); code != 200 {
		t.Fatalf("virt expired before its clock reached the ttl")
	}
	post(t, base+"/v1/sessions/virt:advanceClock", `{"by":"1s"}`)
	gone := func(id string) bool {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if code, _ := get(t, base+"/v1/sessions/"+id); code == 404 {
				_, err := os.Stat(filepath.Join(dir, id+".log"))
				return os.IsNotExist(err)
			}
		}
		return false
	}
	if !gone("virt") {
		t.Fatalf("virt: not removed with its log after its clock passed the ttl")
	}
	if !gone("wall") {
		t.Fatalf("wall: not removed with its log after its expire_time")
	}
	if code, _ := get(t, base+"/v1/sessions/dflt"); code != 200 {
		t.Fatalf("dflt expired though its clock did not move")
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "tcpstated_sessions_expired_total 2") {
		t.Fatalf("/metrics: %s", grepLines(body, "expired"))
	}
	waitLog(t, srv, "session expired")
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestPanicRecovery: an injected panic in one session's call fails that
// session (INTERNAL, then FAILED_PRECONDITION with SESSION_PANICKED) while
// another keeps serving; a restart restores it from its log. The access
// log, the grpc_server_* metrics and tcpstated_build_info show the calls.
func TestPanicRecovery(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: dir,
		Args: []string{"--fsync", "never", "--access-log"}, Env: []string{"TCPSTATED_TEST_PANIC=boom"}})
	base := "http://" + srv.HTTPAddr
	for _, s := range []string{"bad", "good"} {
		post(t, base+"/v1/sessions?session_id="+s, `{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000}}`)
		post(t, base+"/v1/sessions/"+s+"/endpoints", `{"endpointId":"c","connect":{"localAddress":"10.0.0.1:4000","remoteAddress":"10.0.0.2:80"}}`)
		post(t, base+"/v1/sessions/"+s+"/segments", `{"fields":{"sourceAddress":"10.0.0.2:80","destinationAddress":"10.0.0.1:4000","seq":5000,"ack":1001,"flags":["SYN","ACK"],"window":65535}}`)
	}
	n := recordCount(t, base, "bad")
	code, body := postCode(t, base+"/v1/sessions/bad/endpoints/c:send", `{"text":"boom"}`)
	if code != 500 || !strings.Contains(body, "SESSION_PANICKED") {
		t.Fatalf("the panicking call: %d %s", code, body)
	}
	code, body = postCode(t, base+"/v1/sessions/bad/endpoints/c:send", `{"text":"hello"}`)
	if code != 400 || !strings.Contains(body, `"code":9`) || !strings.Contains(body, "SESSION_PANICKED") {
		t.Fatalf("a later call on the failed session: %d %s", code, body)
	}
	if code, body = postCode(t, base+"/v1/sessions/good/endpoints/c:send", `{"text":"hello"}`); code != 200 || !strings.Contains(body, `"bytesAccepted":5`) {
		t.Fatalf("the other session: %d %s", code, body)
	}
	if srv.Panicked() {
		t.Fatalf("the server died of the panic:\n%s", srv.Logs())
	}
	for _, want := range []string{"the engine panicked", `msg=rpc method=/tcpstate.v1.EndpointService/SendData session=sessions/good code=OK duration=`,
		`session=sessions/bad code=FailedPrecondition`} {
		waitLog(t, srv, want)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="SendData",grpc_service="tcpstate.v1.EndpointService",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="Internal",grpc_method="SendData",grpc_service="tcpstate.v1.EndpointService",grpc_type="unary"} 1`,
		`grpc_server_started_total{grpc_method="DrainSegments",grpc_service="tcpstate.v1.SegmentService",grpc_type="unary"} 0`,
		`grpc_server_handling_seconds_bucket{`,
		`tcpstated_session_panics_total 1`,
		`tcpstated_build_info{goversion="go`,
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(metrics, "grpc_server_handled_total"))
		}
	}

	// A restart restores the failed session from its log, as before the
	// call that panicked.
	srv, err := srv.Restart()
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + srv.HTTPAddr
	if m := recordCount(t, base, "bad"); m != n {
		t.Fatalf("restored with %v records, want %v", m, n)
	}
	if code, body = postCode(t, base+"/v1/sessions/bad/endpoints/c:send", `{"text":"hello"}`); code != 200 {
		t.Fatalf("after a restart: %d %s", code, body)
	}
}

// TestVersion: --version prints the build; it is also tcpstated_build_info.
func TestVersion(t *testing.T) {
	var out strings.Builder
	if code := run([]string{"--version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "tcpstated ") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("--version: exit %d, %q", code, out.String())
	}
	bin := testserver.Tcpstated(t, testserver.Race)
	b, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(b), "tcpstated ") {
		t.Fatalf("%s --version: %q %v", bin, b, err)
	}
}

// waitLog waits until the server's log has want (its output is read
// asynchronously).
func waitLog(t *testing.T, srv *testserver.Server, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(srv.Logs(), want) {
			return
		}
	}
	t.Fatalf("server log lacks %q:\n%s", want, srv.Logs())
}

// TestOneReportSchema: `script run --json` prints the API's RunScript
// report, the same message in the same proto3 JSON.
func TestOneReportSchema(t *testing.T) {
	bin := testserver.Tcpstated(t, testserver.Race)
	srv := testserver.StartT(t, testserver.Config{Binary: bin, DataDir: t.TempDir(), Args: []string{"--fsync", "never"}})
	file := filepath.Join("..", "..", "testdata", "scripts", "close-passive.pkt")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := exec.Command(bin, "script", "run", "--compare=semantic", "--json", file).Output()
	if err != nil {
		t.Fatalf("script run: %v", err)
	}
	code, api := postCode(t, "http://"+srv.HTTPAddr+"/v1/scripts:run", `{"script":`+jsonString(string(src))+`,"compare":"SEMANTIC","name":`+jsonString(file)+`}`)
	if code != 200 {
		t.Fatalf("RunScript: %d %s", code, api)
	}
	var c, a map[string]any
	if err := json.Unmarshal(cli, &c); err != nil {
		t.Fatalf("CLI report: %v\n%s", err, cli)
	}
	if err := json.Unmarshal([]byte(api), &a); err != nil {
		t.Fatal(err)
	}
	if c["session"] != "" || !strings.HasPrefix(a["session"].(string), "sessions/") {
		t.Fatalf("session: CLI %v, API %v", c["session"], a["session"])
	}
	delete(c, "session")
	delete(a, "session")
	cb, _ := json.Marshal(c)
	ab, _ := json.Marshal(a)
	if string(cb) != string(ab) || !strings.Contains(string(cb), `"endTime":"`) {
		t.Fatalf("the reports differ:\nCLI %s\nAPI %s", cb, ab)
	}
}

// TestPcapng: GET /v1/sessions/{s}/pcapng is a pcapng file whose packets
// carry the engine's explanations as comments, which tshark reads; /pcap
// stays plain pcap.
func TestPcapng(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed (Debian: apt-get install tshark)")
	}
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: t.TempDir(), Args: []string{"--fsync", "never"}})
	base := "http://" + srv.HTTPAddr
	post(t, base+"/v1/sessions?session_id=cap", `{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000}}`)
	post(t, base+"/v1/sessions/cap/endpoints", `{"listen":{"localAddress":"10.0.0.1:80"}}`)
	post(t, base+"/v1/sessions/cap/segments", `{"fields":{"sourceAddress":"10.0.0.2:40000","destinationAddress":"10.0.0.1:80","seq":100,"flags":["SYN"],"window":65535}}`)
	resp, err := http.Get(base + "/v1/sessions/cap/pcapng")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-pcapng" || resp.Header.Get("X-Packet-Count") != "2" {
		t.Fatalf("GET pcapng: %d %v", resp.StatusCode, resp.Header)
	}
	file := filepath.Join(t.TempDir(), "cap.pcapng")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("tshark", "-r", file, "-T", "fields", "-e", "tcp.flags.str", "-e", "frame.comment")
	cmd.Stderr = io.Discard
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "LISTEN_SYN_ACCEPTED (RFC 9293 §3.10.7.2): third check for a SYN") ||
		!strings.Contains(lines[1], "LISTEN_SYN_ACCEPTED") {
		t.Fatalf("tshark: the packet comments lack the explanation:\n%s", out)
	}
	code, body := get(t, base+"/v1/sessions/cap/pcap")
	if code != 200 || !strings.HasPrefix(body, "\x4d\x3c\xb2\xa1") {
		t.Fatalf("GET pcap is no longer plain pcap: %d %q", code, body[:min(8, len(body))])
	}
}

// TestOpenAPIAndRoot: /openapi.json is titled for the service with a
// version and lists the file routes; GET / redirects to the web view.
func TestOpenAPIAndRoot(t *testing.T) {
	srv := testserver.StartT(t, testserver.Config{Binary: testserver.Tcpstated(t, testserver.Race), DataDir: t.TempDir(), Args: []string{"--fsync", "never"}})
	base := "http://" + srv.HTTPAddr
	code, body := get(t, base+"/openapi.json")
	var doc struct {
		Info struct {
			Title, Version string
		}
		Paths map[string]map[string]any
	}
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
		t.Fatalf("/openapi.json: %d %v", code, err)
	}
	if doc.Info.Title != "tcpstated API" || !strings.HasPrefix(doc.Info.Version, "v1 (tcpstated ") {
		t.Fatalf("info: %+v", doc.Info)
	}
	for _, p := range []string{"/v1/sessions/{session}/pcap", "/v1/sessions/{session}/pcapng", "/v1/sessions/{session}/diagram.svg", "/v1/sessions/{session}/segments:drain", "/healthz"} {
		if doc.Paths[p]["get"] == nil && doc.Paths[p]["post"] == nil {
			t.Errorf("/openapi.json lacks %s", p)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("GET /nope: %d", code)
	}
}
