package shellwords

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  error
	}{
		{"sysctl -w net.ipv4.tcp_sack=0", []string{"sysctl", "-w", "net.ipv4.tcp_sack=0"}, nil},
		{`sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"`, []string{"sysctl", "-w", "net.ipv4.tcp_rmem=4096 131072 6291456"}, nil},
		{"sysctl -w 'net.ipv4.tcp_rmem=4096\t8192 16384'", []string{"sysctl", "-w", "net.ipv4.tcp_rmem=4096\t8192 16384"}, nil},
		{`echo "a \"b\" \\ c" d`, []string{"echo", `a "b" \ c`, "d"}, nil},
		{`a""b ''`, []string{"ab", ""}, nil},
		{"  \t ", nil, nil},
		{`sysctl "x`, nil, ErrUnterminated},
		{`sysctl 'x`, nil, ErrUnterminated},
	} {
		got, err := Split(tc.in)
		if err != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzSplit: Split never panics, and its words, each put back in single
// quotes, split again into the same words.
func FuzzSplit(f *testing.F) {
	f.Add(`sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"`)
	f.Add(`a 'b c' "d\"e"`)
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			if strings.ContainsRune(w, '\'') {
				return
			}
			quoted = append(quoted, "'"+w+"'")
		}
		again, err := Split(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("Split(%q) = %q; re-quoted, %q, %v", s, words, again, err)
		}
	})
}
