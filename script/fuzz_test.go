package script

import (
	"errors"
	"testing"
)

// FuzzParse checks that the parser never panics, that its errors point
// into the source, that a parsed script formats to text that parses back to
// the same script, and that running what parses never panics either.
func FuzzParse(f *testing.F) {
	f.Add([]byte(everySyntax))
	f.Add([]byte("0 < S 0:0(0) win 65535 <mss 1460>\n+0 > S. 0:0(0) ack 1 <...>\n"))
	// FreeBSD's dialect: conditionals, IP fields, wildcards, ICMP, UDP.
	f.Add([]byte("#ifdef A\n+ 0 < (tos 0x20) S 0:0(0) win 1\n#else\n+0 > (hlim 3) S. ...(0) ack 1\n#endif\n" +
		"+0 > R. 0:0(0)! ack 2 win 0/udp(9811 > 1)\n+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n"))
	// TCP Fast Open options (RFC 7413) and sendto connecting with data.
	f.Add([]byte("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 sendto(3, ..., 10, MSG_FASTOPEN, ..., ...) = 10\n" +
		"+0 > S 0:0(0) <mss 1460,FO,eol,eol>\n+0 < S. 0:0(0) ack 1 win 1 <FO 0102030405060708,FOEXP 01020304>\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := ParseDefines("f", src, []string{"A"})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Pos.Line < 1 || pe.Pos.Col < 1 || pe.Pos.Line > countLines(src)+1 {
				t.Fatalf("error position %v outside the %d-line source: %v", pe.Pos, countLines(src), err)
			}
			return
		}
		text := s.Format()
		s2, err := Parse("formatted", []byte(text))
		if err != nil {
			t.Fatalf("formatted script does not parse: %v\n%s", err, text)
		}
		if got := s2.Format(); got != text {
			t.Fatalf("format not stable:\n%s\n---\n%s", text, got)
		}
		if len(src) <= 2048 {
			rep, err := Run(src, Options{Defines: []string{"A"}})
			if err != nil || rep == nil {
				t.Fatalf("Run after a successful Parse: %v", err)
			}
		}
	})
}

func countLines(b []byte) int {
	n := 1
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
