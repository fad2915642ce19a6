package issue4

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// walkHandshake creates session id with a listener and a peer's SYN, and
// with ack also the peer's ACK; it returns the connection's name.
func walkHandshake(t *testing.T, s *server, id string, ack bool) string {
	t.Helper()
	s.json(t, "POST", "/v1/sessions?sessionId="+id, `{"options": {"isnMode": "ISN_MODE_FIXED", "fixedIsn": 1000}}`, nil)
	base := "/v1/sessions/" + id
	s.json(t, "POST", base+"/endpoints", `{"endpointId": "web", "listen": {"localAddress": "10.0.0.1:80"}}`, nil)
	var r struct {
		Outputs struct{ Transitions []struct{ Endpoint string } }
	}
	s.json(t, "POST", base+"/segments", segmentFields(100, 0, "SYN", ""), &r)
	if len(r.Outputs.Transitions) == 0 {
		t.Fatalf("the SYN made no connection")
	}
	if ack {
		s.json(t, "POST", base+"/segments", segmentFields(101, 1001, "ACK", ""), nil)
	}
	return r.Outputs.Transitions[0].Endpoint
}

// TestDiagramAndWebViewFilesOverHTTP: the diagram is an SVG file with the
// states of the session; the web view's files are served from the binary
// with a policy that keeps the page to its own server; errors are the
// gateway's JSON statuses.
func TestDiagramAndWebViewFilesOverHTTP(t *testing.T) {
	s := shared(t)
	walkHandshake(t, s, "files", true)
	tests := []struct {
		path, contentType string
		code              int
		contains          []string
	}{
		{"/v1/sessions/files/diagram.svg", "image/svg+xml", 200, []string{"<svg", "LISTEN", "SYN-RECEIVED", "ESTABLISHED", "S. seq=1000 ack=101"}},
		{"/v1/sessions/files/diagram.svg?relative=true&tcp_options=true", "image/svg+xml", 200, []string{"S. seq=0 ack=1", "mss 1460"}},
		{"/v1/sessions/files/diagram.svg?max_segments=1", "image/svg+xml", 200, []string{"the first 1 of 3 segments"}},
		{"/v1/sessions/files/diagram.svg?max_segments=lots", "application/json", 400, []string{"max_segments"}},
		{"/v1/sessions/nope/diagram.svg", "application/json", 404, []string{"sessions/nope not found"}},
		{"/v1/sessions/nope/pcap", "application/json", 404, []string{"sessions/nope not found"}},
		{"/ui/", "text/html; charset=utf-8", 200, []string{"<title>tcpstated</title>", "app.js"}},
		{"/ui/app.js", "text/javascript; charset=utf-8", 200, []string{"diagram.svg"}},
		{"/ui/style.css", "text/css; charset=utf-8", 200, []string{".state.ESTABLISHED"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(s.url(tt.path))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			if _, err := b.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || resp.Header.Get("Content-Type") != tt.contentType {
				t.Fatalf("%d %q, want %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.code, tt.contentType, b.String())
			}
			for _, want := range tt.contains {
				if !strings.Contains(b.String(), want) {
					t.Errorf("the body lacks %q", want)
				}
			}
			if strings.HasPrefix(tt.path, "/ui/") && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("no content security policy: %q", resp.Header.Get("Content-Security-Policy"))
			}
		})
	}
	if code, _ := s.call(t, "GET", "/ui", ""); code != 200 { // redirected to /ui/
		t.Errorf("GET /ui: %d", code)
	}
}

// TestScriptRunOverREST: POST /v1/scripts:run runs a script in a session
// that stays, and reports passed, the session and every line; a failing
// script says where; a syntax error is a 400 that creates nothing.
func TestScriptRunOverREST(t *testing.T) {
	s := shared(t)
	src, err := os.ReadFile(filepath.Join(repo, "testdata", "scripts", "handshake-passive.pkt"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"script": string(src), "compare": "SEMANTIC", "name": "handshake-passive.pkt", "sessionId": "script-rest"})
	var rep struct {
		Passed  bool
		Session string
		Compare string
		Failure string
		Lines   []struct {
			Line   int
			Status string
			Kind   string
		}
	}
	s.json(t, "POST", "/v1/scripts:run", string(body), &rep)
	if !rep.Passed || rep.Session != "sessions/script-rest" || rep.Compare != "semantic" || len(rep.Lines) == 0 {
		t.Fatalf("report: %+v", rep)
	}
	kinds := map[string]bool{}
	for _, l := range rep.Lines {
		kinds[l.Kind] = true
	}
	if !kinds["packet_in"] || !kinds["packet_out"] || !kinds["syscall"] {
		t.Errorf("line kinds %v", kinds)
	}
	// The session stays: its diagram shows the script's exchange.
	if code, svg := s.call(t, "GET", "/v1/sessions/script-rest/diagram.svg", ""); code != 200 || !strings.Contains(string(svg), "ESTABLISHED") {
		t.Errorf("the script's session diagram: %d", code)
	}

	wrong := strings.Replace(string(src), "> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2", 1)
	if wrong == string(src) {
		t.Fatalf("the script has no SYN-ACK line to break")
	}
	body, _ = json.Marshal(map[string]string{"script": wrong})
	s.json(t, "POST", "/v1/scripts:run", string(body), &rep)
	if rep.Passed || rep.Failure == "" {
		t.Errorf("a wrong expectation: passed %t failure %q", rep.Passed, rep.Failure)
	}

	var before struct{ Sessions []any }
	s.json(t, "GET", "/v1/sessions?pageSize=1000", "", &before)
	code, b := s.call(t, "POST", "/v1/scripts:run", `{"script": "0 < S 0:0(0) win\n+0 >>> nonsense\n"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(b), "script") {
		t.Errorf("a syntax error: %d %s", code, b)
	}
	var after struct{ Sessions []any }
	s.json(t, "GET", "/v1/sessions?pageSize=1000", "", &after)
	if len(after.Sessions) != len(before.Sessions) {
		t.Errorf("a rejected script made a session: %d sessions, then %d", len(before.Sessions), len(after.Sessions))
	}
}
