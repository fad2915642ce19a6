package issue4

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/tcpstated/tcpstated/internal/testserver"
)

// TestWebViewLoadsWithAuthTokens: with --auth-tokens the web view's static
// files load without a token (a browser cannot send one when it navigates
// to /ui/; the files hold no data), while the API they call, and the
// diagram and pcap files, still need the bearer token the page sends.
func TestWebViewLoadsWithAuthTokens(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("s3cret-teacher-token-0123 teacher\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{testserver.StartT(t, testserver.Config{Binary: binary(t), DataDir: filepath.Join(dir, "data"),
		Args: []string{"--log-format", "json", "--auth-tokens", tokens}})}
	defer s.stop()
	get := func(path, token string) int {
		req, err := http.NewRequest("GET", s.url(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	req, _ := http.NewRequest("POST", s.url("/v1/sessions?sessionId=auth"), nil)
	req.Header.Set("Authorization", "Bearer s3cret-teacher-token-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("creating a session with the token: %v %v", err, resp)
	}
	resp.Body.Close()
	tests := []struct {
		path, token string
		want        int
	}{
		{"/ui/", "", 200},
		{"/ui/app.js", "", 200},
		{"/ui/style.css", "", 200},
		{"/v1/sessions", "", 401},
		{"/v1/sessions/auth/diagram.svg", "", 401},
		{"/v1/sessions/auth/pcap", "", 401},
		{"/v1/sessions", "s3cret-teacher-token-0123", 200},
		{"/v1/sessions/auth/diagram.svg", "s3cret-teacher-token-0123", 200},
		{"/v1/sessions/auth/pcap", "s3cret-teacher-token-0123", 200},
		{"/v1/sessions/auth/diagram.svg", "wrong", 401},
	}
	for _, tt := range tests {
		if got := get(tt.path, tt.token); got != tt.want {
			t.Errorf("GET %s with token %q: %d, want %d", tt.path, tt.token, got, tt.want)
		}
	}
}
