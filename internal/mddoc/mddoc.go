// Package mddoc updates generated parts of the Markdown documents: a body
// between the markers <!-- begin NAME --> and <!-- end NAME -->, which the
// make targets that measure (bench-loss-sim, bench-loss) rewrite.
package mddoc

import (
	"fmt"
	"os"
	"strings"
)

// ReplaceSection puts body between the markers <!-- begin NAME --> and
// <!-- end NAME --> of the Markdown file at path.
func ReplaceSection(path, name, body string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s, err := replace(string(b), name, body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func replace(s, name, body string) (string, error) {
	begin, end := "<!-- begin "+name+" -->\n", "<!-- end "+name+" -->"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %q ... %q markers", begin, end)
	}
	return s[:i+len(begin)] + body + s[j:], nil
}
