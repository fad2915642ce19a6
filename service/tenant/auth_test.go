package tenant

import (
	"strings"
	"testing"
)

const (
	tokenAlice = "alice-token-0123456789"
	tokenBob   = "bob-token-0123456789ab"
	tokenBob2  = "bob-second-token-98765"
)

func TestParseTokens(t *testing.T) {
	cases := []struct {
		name, file string
		want       map[string]string
		wantErr    string
	}{
		{"pairs, comments, blank lines", "# c\n\n" + tokenAlice + " alice\n  " + tokenBob + "\tbob  \n", map[string]string{tokenAlice: "alice", tokenBob: "bob"}, ""},
		{"two tokens, one tenant", tokenBob + " bob\n" + tokenBob2 + " bob\n", map[string]string{tokenBob: "bob", tokenBob2: "bob"}, ""},
		{"short token", "abc alice\n", nil, "line 1: a token"},
		{"three fields", tokenAlice + " alice extra\n", nil, "line 1: want TOKEN TENANT"},
		{"bad tenant", tokenAlice + " al/ice\n", nil, "tenant"},
		{"duplicate token", tokenAlice + " a\n" + tokenAlice + " b\n", nil, "line 2: the token appears twice"},
		{"empty", "# nothing\n", nil, "no tokens"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTokens(strings.NewReader(tc.file))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v", got, err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
