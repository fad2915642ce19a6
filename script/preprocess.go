package script

import (
	"bytes"
	"fmt"
	"strings"
)

// preprocess applies packetdrill's conditional lines, as FreeBSD's
// scripts use them to write one script for several stacks:
//
//	#ifdef NAME / #ifndef NAME / #else / #endif
//
// Lines of a branch not taken, and the directive lines themselves, are
// replaced by blanks of the same length, so every line keeps its number
// and column in reports and error messages. defined holds the names that
// are defined (--define NAME, and the target's OS name).
func preprocess(name string, src []byte, defined map[string]bool) ([]byte, error) {
	if !bytes.Contains(src, []byte("#")) {
		return src, nil
	}
	type frame struct {
		line      int
		taking    bool // this branch's lines are kept
		parent    bool // the enclosing branch's lines are kept
		sawElse   bool
		directive string
	}
	var stack []frame
	out := make([]byte, 0, len(src))
	taking := true
	lineNo := 0
	for len(src) > 0 {
		lineNo++
		line := src
		rest := []byte(nil)
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, rest = src[:i+1], src[i+1:]
		}
		src = rest
		body := strings.TrimSpace(string(line))
		if strings.HasPrefix(body, "#") {
			fields := strings.Fields(body[1:])
			if len(fields) == 0 {
				return nil, &ParseError{Name: name, Pos: Pos{Line: lineNo, Col: 1}, Msg: "expected #ifdef NAME, #ifndef NAME, #else or #endif, found a lone #"}
			}
			perr := func(format string, args ...any) error {
				return &ParseError{Name: name, Pos: Pos{Line: lineNo, Col: 1}, Msg: fmt.Sprintf(format, args...)}
			}
			switch d := fields[0]; d {
			case "ifdef", "ifndef":
				if len(fields) != 2 {
					return nil, perr("expected #%s NAME, found %q", d, body)
				}
				want := defined[fields[1]]
				if d == "ifndef" {
					want = !want
				}
				stack = append(stack, frame{line: lineNo, taking: taking && want, parent: taking, directive: body})
				taking = taking && want
			case "else":
				if len(stack) == 0 {
					return nil, perr("#else without #ifdef")
				}
				f := &stack[len(stack)-1]
				if f.sawElse {
					return nil, perr("a second #else for the #ifdef of line %d", f.line)
				}
				f.sawElse = true
				f.taking = f.parent && !f.taking
				taking = f.taking
			case "endif":
				if len(stack) == 0 {
					return nil, perr("#endif without #ifdef")
				}
				taking = stack[len(stack)-1].parent
				stack = stack[:len(stack)-1]
			default:
				return nil, perr("unknown directive #%s: expected #ifdef, #ifndef, #else or #endif", d)
			}
			out = append(out, blank(line)...)
			continue
		}
		if taking {
			out = append(out, line...)
		} else {
			out = append(out, blank(line)...)
		}
	}
	if len(stack) > 0 {
		f := stack[len(stack)-1]
		return nil, &ParseError{Name: name, Pos: Pos{Line: f.line, Col: 1}, Msg: fmt.Sprintf("%s is not closed: expected #endif before end of file", f.directive)}
	}
	return out, nil
}

// blank returns line with every byte but the line end replaced by a space.
func blank(line []byte) []byte {
	b := bytes.Repeat([]byte{' '}, len(line))
	if n := len(line); n > 0 && line[n-1] == '\n' {
		b[n-1] = '\n'
	}
	return b
}
