package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestRESTSetMd5Key: POST .../endpoints/{endpoint}:setMd5Key sets and
// removes a live listener's TCP-MD5 key for a peer (RFC 2385, as
// setsockopt TCP_MD5SIG). The key never comes back: not in the response,
// the endpoint, or the log's records; a retry with the same requestId is
// not logged twice; the session re-runs identically.
func TestRESTSetMd5Key(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	s.doJSON("POST", "/v1/sessions?session_id=bgp", `{"options":{"isnMode":"ISN_MODE_FIXED","fixedIsn":1000}}`)
	s.doJSON("POST", "/v1/sessions/bgp/endpoints", `{"endpointId":"peer","listen":{"localAddress":"10.0.0.1:179"}}`)
	key := base64.StdEncoding.EncodeToString([]byte("bgp-neighbour-secret"))
	records := func() string {
		code, body := s.do("GET", "/v1/sessions/bgp/records", "")
		if code != http.StatusOK {
			t.Fatalf("records: HTTP %d %s", code, body)
		}
		return string(body)
	}
	for _, step := range []struct {
		body, keySet string
	}{
		{`{"peerAddress":"10.0.0.2","key":"` + key + `","requestId":"k1"}`, "true"},
		{`{"peerAddress":"10.0.0.2","key":"` + key + `","requestId":"k1"}`, "true"}, // a retry: answered from the log
		{`{"peerAddress":"10.0.0.2","remove":true}`, ""},
	} {
		code, body := s.do("POST", "/v1/sessions/bgp/endpoints/peer:setMd5Key", step.body)
		if code != http.StatusOK {
			t.Fatalf("setMd5Key %s: HTTP %d %s", step.body, code, body)
		}
		if strings.Contains(string(body), key) {
			t.Fatalf("the response shows the key: %s", body)
		}
		if got := strings.Contains(string(body), `"keySet":true`); got != (step.keySet == "true") {
			t.Fatalf("setMd5Key %s: %s, want keySet %q", step.body, body, step.keySet)
		}
	}
	recs := records()
	if strings.Contains(recs, key) {
		t.Fatalf("the records show the key")
	}
	if n := strings.Count(recs, `"md5Key":`); n != 2 {
		t.Fatalf("%d md5Key inputs in the log, want 2 (set once, remove once): %s", n, recs)
	}
	if !strings.Contains(recs, "set the MD5 key for 10.0.0.2 on endpoint peer") || !strings.Contains(recs, "remove the MD5 key for 10.0.0.2") {
		t.Fatalf("record summaries: %s", recs)
	}
	if v := s.doJSON("POST", "/v1/sessions/bgp:verify", `{}`); jget(v, "identical") != true {
		t.Fatalf("verify: %v", v)
	}
}
