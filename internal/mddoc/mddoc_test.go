package mddoc

import "testing"

func TestReplace(t *testing.T) {
	cases := []struct {
		name, in, body, want, wantErr string
	}{
		{"replaces the body", "a\n<!-- begin x -->\nold\n<!-- end x -->\nb", "new\n", "a\n<!-- begin x -->\nnew\n<!-- end x -->\nb", ""},
		{"empty body", "<!-- begin x -->\n<!-- end x -->", "t\n", "<!-- begin x -->\nt\n<!-- end x -->", ""},
		{"other section untouched", "<!-- begin y -->\nold\n<!-- end y -->", "new\n", "", "no"},
		{"end before begin", "<!-- end x --><!-- begin x -->\n", "new\n", "", "no"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := replace(tc.in, "x", tc.body)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("replace = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("replace = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
