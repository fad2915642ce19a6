// Package shellwords splits a script's backquoted command into words the
// way a POSIX shell would for the simple commands scripts use: blanks
// separate words, and single or double quotes keep blanks inside one
// (`sysctl -w net.ipv4.tcp_rmem="4096 131072 6291456"` is three words).
// Variables, globs and escapes other than \" and \\ inside double quotes
// are not expanded: the commands are data, never run through a shell.
package shellwords

import (
	"errors"
	"strings"
)

// ErrUnterminated is returned for a quote that is never closed.
var ErrUnterminated = errors.New("unterminated quote")

// Split returns the words of s.
func Split(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, ErrUnterminated
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, ErrUnterminated
			}
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
