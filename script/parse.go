package script

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseError is a syntax error at a position of a script.
type ParseError struct {
	Name string // file name; "" for none
	Pos  Pos
	Msg  string // what was expected, and what was found
}

func (e *ParseError) Error() string {
	if e.Name != "" {
		return e.Name + ":" + e.Pos.String() + ": " + e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// maxScriptTime bounds event times so that durations cannot overflow.
const maxScriptTime = 1e6 // seconds (11.5 days)

// Parse parses a packetdrill script. name is used in error messages. The
// first error stops parsing; it says line:column and what was expected.
func Parse(name string, src []byte) (*Script, error) {
	return ParseDefines(name, src, nil)
}

// ParseDefines parses a script whose #ifdef lines see the given names as
// defined (packetdrill's --define NAME, and the target's OS name).
func ParseDefines(name string, src []byte, defines []string) (*Script, error) {
	defined := make(map[string]bool, len(defines))
	for _, d := range defines {
		defined[d] = true
	}
	orig := src
	src, err := preprocess(name, src, defined)
	if err != nil {
		return nil, err
	}
	p := &parser{name: name, src: src}
	p.lineStarts = append(p.lineStarts, 0)
	for i, c := range src {
		if c == '\n' {
			p.lineStarts = append(p.lineStarts, i+1)
		}
	}
	s, err := p.script()
	if err != nil {
		return nil, err
	}
	s.Source = orig
	s.Defines = append([]string(nil), defines...)
	return s, nil
}

type parser struct {
	name       string
	src        []byte
	pos        int
	lineStarts []int
	compare    CompareMode
	comparePos Pos
	inHeader   bool // no event seen yet: "// compare:" comments count
	depth      int  // nesting of brackets in expressions
}

// maxDepth bounds the nesting of [ { ( in system call arguments.
const maxDepth = 64

// bail is the panic value that carries a ParseError out of the recursion.
type bail struct{ err *ParseError }

func (p *parser) posAt(off int) Pos {
	i := sort.Search(len(p.lineStarts), func(i int) bool { return p.lineStarts[i] > off }) - 1
	start := p.lineStarts[i]
	if off > len(p.src) {
		off = len(p.src)
	}
	return Pos{Line: i + 1, Col: utf8.RuneCount(p.src[start:off]) + 1}
}

func (p *parser) failAt(off int, format string, args ...any) {
	panic(bail{&ParseError{Name: p.name, Pos: p.posAt(off), Msg: fmt.Sprintf(format, args...)}})
}

// found describes what is at the cursor, for error messages.
func (p *parser) found() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	c := p.src[p.pos]
	if c == '\n' || c == '\r' {
		return "end of line"
	}
	end := p.pos
	if !isWordByte(c) {
		_, n := utf8.DecodeRune(p.src[p.pos:])
		end += n
	}
	for end < len(p.src) && end-p.pos < 16 && isWordByte(p.src[end]) {
		end++
	}
	return strconv.Quote(string(p.src[p.pos:end]))
}

func (p *parser) expected(what string) {
	p.failAt(p.pos, "expected %s, found %s", what, p.found())
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isWordStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isWordByte(c byte) bool { return isWordStart(c) || isDigit(c) }

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) peekAt(k int) byte {
	if p.pos+k < len(p.src) {
		return p.src[p.pos+k]
	}
	return 0
}

func (p *parser) hasPrefix(s string) bool {
	return strings.HasPrefix(string(p.src[p.pos:min(len(p.src), p.pos+len(s))]), s)
}

// skip skips blanks and comments. With newlines, line ends are skipped too
// (between statements, or inside brackets where statements may wrap).
func (p *parser) skip(newlines bool) {
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case isSpace(c):
			p.pos++
		case c == '\n':
			if !newlines {
				return
			}
			p.pos++
		case c == '/' && p.peekAt(1) == '/':
			start := p.pos
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
			p.lineComment(start, string(p.src[start+2:p.pos]))
		case c == '/' && p.peekAt(1) == '*':
			start := p.pos
			end := strings.Index(string(p.src[p.pos+2:]), "*/")
			if end < 0 {
				p.failAt(start, "unterminated /* comment: expected */ before end of file")
			}
			p.pos += 2 + end + 2
		default:
			return
		}
	}
}

// lineComment notes a "// compare: strict|semantic" directive in the header.
func (p *parser) lineComment(off int, text string) {
	if !p.inHeader {
		return
	}
	t := strings.TrimSpace(text)
	rest, ok := strings.CutPrefix(t, "compare:")
	if !ok {
		return
	}
	mode, err := ParseCompareMode(strings.TrimSpace(rest))
	if err != nil || mode == CompareAuto {
		p.failAt(off, "expected \"// compare: strict\" or \"// compare: semantic\", found %q", t)
	}
	if p.compare != CompareAuto && p.compare != mode {
		p.failAt(off, "conflicting compare directive: compare: %s was given at %s", p.compare, p.comparePos)
	}
	p.compare, p.comparePos = mode, p.posAt(off)
}

// endOfStatement requires the rest of the line to be blank or comments.
func (p *parser) endOfStatement(what string) {
	p.skip(false)
	if p.pos < len(p.src) && p.src[p.pos] != '\n' {
		p.failAt(p.pos, "expected end of line after the %s, found %s", what, p.found())
	}
}

func (p *parser) script() (s *Script, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			s, err = nil, b.err
		}
	}()
	s = &Script{Name: p.name, Source: p.src, Lines: len(p.lineStarts)}
	if len(p.src) > 0 && p.src[len(p.src)-1] == '\n' {
		s.Lines--
	}
	p.inHeader = true
	for {
		p.skip(true)
		if p.pos >= len(p.src) {
			break
		}
		start := p.pos
		if p.hasPrefix("--") {
			if len(s.Events) > 0 {
				p.failAt(start, "header options (--%s) must come before the first event", p.word(p.pos+2))
			}
			s.Options = append(s.Options, p.headerOptions()...)
			continue
		}
		p.inHeader = false
		ev := p.event(start)
		ev.Text = strings.TrimSpace(string(p.src[start:p.pos]))
		ev.EndLine = p.posAt(p.pos).Line
		s.Events = append(s.Events, ev)
	}
	s.Compare = p.compare
	if err := s.resolveHeader(); err != nil {
		return nil, err
	}
	return s, nil
}

// word returns the identifier-ish text at off (for messages).
func (p *parser) word(off int) string {
	end := off
	for end < len(p.src) && (isWordByte(p.src[end]) || p.src[end] == '-') {
		end++
	}
	return string(p.src[off:end])
}

// headerOptions parses one line of --name[=value] options.
func (p *parser) headerOptions() []HeaderOpt {
	var out []HeaderOpt
	for p.hasPrefix("--") {
		start := p.pos
		p.pos += 2
		nameStart := p.pos
		for p.pos < len(p.src) && (isWordByte(p.src[p.pos]) || p.src[p.pos] == '-') {
			p.pos++
		}
		if p.pos == nameStart {
			p.expected("an option name after --")
		}
		o := HeaderOpt{Pos: p.posAt(start), Name: string(p.src[nameStart:p.pos])}
		if p.peek() == '=' {
			p.pos++
			o.HasValue = true
			vstart := p.pos
			if p.peek() == '"' {
				o.Value = p.quoted()
			} else {
				for p.pos < len(p.src) && !isSpace(p.src[p.pos]) && p.src[p.pos] != '\n' {
					p.pos++
				}
				o.Value = string(p.src[vstart:p.pos])
			}
		}
		if c := p.peek(); p.pos < len(p.src) && !isSpace(c) && c != '\n' {
			p.failAt(p.pos, "expected =VALUE or a blank after --%s, found %s", o.Name, p.found())
		}
		o.Text = string(p.src[start:p.pos])
		out = append(out, o)
		p.skip(false)
	}
	p.endOfStatement("header option")
	return out
}

// quoted parses a "string" with Go-style escapes.
func (p *parser) quoted() string {
	start := p.pos
	p.pos++
	for p.pos < len(p.src) && p.src[p.pos] != '"' && p.src[p.pos] != '\n' {
		if p.src[p.pos] == '\\' {
			p.pos++
		}
		p.pos++
	}
	if p.pos >= len(p.src) || p.src[p.pos] != '"' {
		p.failAt(start, "unterminated string: expected a closing \" on the same line")
	}
	p.pos++
	s, err := strconv.Unquote(string(p.src[start:p.pos]))
	if err != nil {
		p.failAt(start, "bad string literal %s: %v", string(p.src[start:p.pos]), err)
	}
	return s
}

// event parses a timed line: TIME ACTION.
func (p *parser) event(start int) *Event {
	ev := &Event{Pos: p.posAt(start)}
	switch {
	case p.peek() == '`' || p.hasPrefix("%{"):
		ev.Time = Time{Kind: TimeNone}
	default:
		ev.Time = p.time()
		p.skip(false)
	}
	switch c := p.peek(); {
	case c == '<' || c == '>':
		ev.Packet = p.packet()
		ev.Kind = EventPacketIn
		if ev.Packet.Dir == Outbound {
			ev.Kind = EventPacketOut
		}
		p.endOfStatement("packet")
	case c == '`':
		ev.Kind, ev.Skip = EventSkip, p.shell()
		p.endOfStatement("shell command")
	case c == '%' && p.peekAt(1) == '{':
		ev.Kind, ev.Skip = EventSkip, p.python()
		p.endOfStatement("python block")
	case isWordStart(c):
		ev.Kind, ev.Syscall = EventSyscall, p.syscall()
		p.endOfStatement("system call")
	default:
		p.expected("a packet (< or >), a system call, a `shell command` or a %{ python }% block after the time")
	}
	if ev.Time.Kind == TimeBlocking && ev.Kind != EventSyscall {
		p.failAt(start, "a blocking time (start...end) is only allowed on a system call")
	}
	return ev
}

// time parses "*", "0.1", "+0.1", "A~B" and "A...B".
func (p *parser) time() Time {
	if p.peek() == '*' {
		p.pos++
		return Time{Kind: TimeAny}
	}
	start := p.timeVal()
	switch {
	case p.peek() == '~':
		p.pos++
		end := p.timeVal()
		t := Time{Kind: TimeRange, Start: start, End: end}
		if !start.Rel && !end.Rel && end.D < start.D {
			p.failAt(p.pos, "time range %s ends before it starts", t)
		}
		return t
	case p.hasPrefix("..."):
		p.pos += 3
		end := p.timeVal()
		t := Time{Kind: TimeBlocking, Start: start, End: end}
		if !start.Rel && !end.Rel && end.D < start.D {
			p.failAt(p.pos, "blocking time %s ends before it starts", t)
		}
		return t
	}
	return Time{Kind: TimeExact, Start: start}
}

// timeVal parses [+]seconds: "0", "0.100", "+.2", "1.".
func (p *parser) timeVal() TimeVal {
	var t TimeVal
	start := p.pos
	if p.peek() == '+' {
		t.Rel = true
		p.pos++
		p.skip(false) // FreeBSD's scripts also write "+ 0.00"
	}
	numStart := p.pos
	for isDigit(p.peek()) {
		p.pos++
	}
	if p.peek() == '.' && p.peekAt(1) != '.' {
		p.pos++
		for isDigit(p.peek()) {
			p.pos++
		}
	}
	text := string(p.src[numStart:p.pos])
	if text == "" || text == "." {
		p.pos = start
		p.expected("a time (seconds such as 0.100, +0.1, a range 0.1~0.2, or *)")
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f > maxScriptTime {
		p.failAt(numStart, "time %s is out of range (at most %d seconds)", text, int(maxScriptTime))
	}
	t.D = time.Duration(math.Round(f*1e6)) * time.Microsecond
	return t
}

// shell parses `command`, which may span lines.
func (p *parser) shell() *Skip {
	start := p.pos
	end := strings.IndexByte(string(p.src[p.pos+1:]), '`')
	if end < 0 {
		p.failAt(start, "unterminated shell command: expected a closing `")
	}
	body := string(p.src[p.pos+1 : p.pos+1+end])
	p.pos += end + 2
	return &Skip{Kind: SkipShell, Body: body}
}

// python parses %{ ... }%, which may span lines.
func (p *parser) python() *Skip {
	start := p.pos
	end := strings.Index(string(p.src[p.pos+2:]), "}%")
	if end < 0 {
		p.failAt(start, "unterminated python block: expected }%% to close %%{")
	}
	body := string(p.src[p.pos+2 : p.pos+2+end])
	p.pos += end + 4
	return &Skip{Kind: SkipPython, Body: body}
}

// uint parses an unsigned decimal or hex number up to max (at most 2^32-1).
func (p *parser) uint(what string, max uint64) uint32 { return uint32(p.uint64(what, max)) }

// uint64 parses an unsigned decimal or hex number up to max.
func (p *parser) uint64(what string, max uint64) uint64 {
	start := p.pos
	base := 10
	if p.peek() == '0' && (p.peekAt(1) == 'x' || p.peekAt(1) == 'X') {
		p.pos += 2
		base = 16
	}
	ds := p.pos
	for p.pos < len(p.src) && (isDigit(p.src[p.pos]) || base == 16 && strings.IndexByte("abcdefABCDEF", p.src[p.pos]) >= 0) {
		p.pos++
	}
	if p.pos == ds {
		p.pos = start
		p.expected(what)
	}
	v, err := strconv.ParseUint(string(p.src[ds:p.pos]), base, 64)
	if err != nil || v > max {
		p.failAt(start, "%s %s is out of range (at most %d)", what, string(p.src[start:p.pos]), max)
	}
	return v
}

// flagLetters are the packetdrill flag letters tcpstated knows.
const flagLetters = "FSRP.UEW"

// packet parses "< [flow 2] S. 0:0(0) ack 1 win 65535 urg 0 <options>".
func (p *parser) packet() *Packet {
	pk := &Packet{Dir: Inbound}
	if p.peek() == '>' {
		pk.Dir = Outbound
	}
	p.pos++
	p.skip(false)
	if p.peek() == '[' {
		p.bracket(pk)
		p.skip(false)
	}
	if p.peek() == '(' {
		p.ipFields(pk)
		p.skip(false)
	}
	if p.keyword("icmp") {
		if pk.Dir == Outbound {
			p.failAt(p.pos-len("icmp"), "> icmp lines are not supported: tcpstated's targets emit TCP only")
		}
		pk.ICMP = p.icmp()
		return pk
	}
	// Flags: a run of flag letters, or "-" for none.
	fs := p.pos
	for p.pos < len(p.src) && !isSpace(p.src[p.pos]) && p.src[p.pos] != '\n' {
		p.pos++
	}
	pk.Flags = string(p.src[fs:p.pos])
	switch {
	case pk.Flags == "":
		p.pos = fs
		p.expected("TCP flags (such as S, S., P., F., R, ., or - for none)")
	case pk.Flags == "-":
	default:
		seen := map[rune]bool{}
		for i, c := range pk.Flags {
			if !strings.ContainsRune(flagLetters, c) {
				p.failAt(fs+i, "expected TCP flags (letters of %q, or - for none), found %q in %q", flagLetters, c, pk.Flags)
			}
			if seen[c] {
				p.failAt(fs+i, "flag %q is repeated in %q", c, pk.Flags)
			}
			seen[c] = true
		}
	}
	p.skip(false)
	// start:end(len), or ...(len) for any sequence number
	if p.hasPrefix("...") {
		if pk.Dir == Inbound {
			p.failAt(p.pos, "...(len) (any sequence number) is only for > lines: an inbound packet needs its sequence number")
		}
		p.pos += 3
		pk.SeqAny = true
		pk.Len = p.seqLen(seqForm, "payload length")
		pk.End = pk.Len
	} else {
		pk.Seq, pk.End, pk.Len = p.seqRange(seqForm, "a sequence number (start:end(len))", "payload length")
	}
	if p.peek() == '!' {
		p.pos++
		pk.SeqAbs = true
	}
	for {
		p.skip(false)
		kw := p.pos
		switch {
		case p.keyword("ack"):
			if pk.Ack != nil {
				p.failAt(kw, "ack is given twice")
			}
			p.skip(false)
			v := p.uint("an acknowledgment number after ack", math.MaxUint32)
			pk.Ack = &v
		case p.keyword("win"):
			if pk.Win != nil {
				p.failAt(kw, "win is given twice")
			}
			p.skip(false)
			v := p.uint("a window after win", math.MaxUint16)
			pk.Win = &v
		case p.keyword("urg"):
			if pk.Urg != nil {
				p.failAt(kw, "urg is given twice")
			}
			p.skip(false)
			v := p.uint("an urgent pointer after urg", math.MaxUint16)
			pk.Urg = &v
		case p.peek() == '<':
			if pk.HasOp {
				p.failAt(kw, "the option list is given twice")
			}
			p.options(pk)
			if pk.AnyOp && pk.Dir == Inbound {
				p.failAt(kw, "<...> (any options) is only for > lines: an inbound packet needs its options spelled out")
			}
		case p.hasPrefix("/udp("):
			if pk.UDPEncap != "" {
				p.failAt(kw, "/udp(...) is given twice")
			}
			p.pos += len("/udp(")
			end := strings.IndexByte(string(p.src[p.pos:]), ')')
			if nl := strings.IndexByte(string(p.src[p.pos:]), '\n'); end < 0 || nl >= 0 && nl < end {
				p.failAt(kw, "unterminated /udp(: expected ) on the same line")
			}
			pk.UDPEncap = strings.TrimSpace(string(p.src[p.pos : p.pos+end]))
			if pk.UDPEncap == "" {
				p.failAt(kw, "expected /udp(SPORT > DPORT), found /udp()")
			}
			p.pos += end + 1
		default:
			if c := p.peek(); p.pos < len(p.src) && c != '\n' && !(c == '/' && (p.peekAt(1) == '/' || p.peekAt(1) == '*')) {
				p.expected("ack N, win N, urg N, <options> or end of line")
			}
			return pk
		}
	}
}

// keyword consumes kw if it is next, followed by a non-word byte.
func (p *parser) keyword(kw string) bool {
	if !p.hasPrefix(kw) {
		return false
	}
	if n := p.pos + len(kw); n < len(p.src) && isWordByte(p.src[n]) {
		return false
	}
	p.pos += len(kw)
	return true
}

// The two spellings of a segment's sequence range: a packet's, and the TCP
// segment an ICMP error quotes.
const (
	seqForm    = "start:end(len)"
	quotedForm = "[start:end(len)]"
)

// seqRange parses "start:end(len)" and checks that len is end - start. form
// names the spelling in errors, what the start number, noun the length.
func (p *parser) seqRange(form, what, noun string) (seq, end, n uint32) {
	seq = p.uint(what, math.MaxUint32)
	if p.peek() != ':' {
		p.expected("':' in " + form)
	}
	p.pos++
	end = p.uint("the end sequence number in "+form, math.MaxUint32)
	lenPos := p.pos + 1
	n = p.seqLen(form, noun)
	if end-seq != n {
		p.failAt(lenPos, "%s %d does not match %d:%d (end - start = %d)", noun, n, seq, end, end-seq)
	}
	return seq, end, n
}

// seqLen parses the "(len)" that ends a sequence range.
func (p *parser) seqLen(form, noun string) uint32 {
	if p.peek() != '(' {
		p.expected("'(' in " + form)
	}
	p.pos++
	n := p.uint("the "+noun+" in "+form, 1<<20)
	if p.peek() != ')' {
		p.expected("')' in " + form)
	}
	p.pos++
	return n
}

// icmp parses the rest of "< icmp TYPE [CODE] [mtu N] [seq:end(len)[/udp(...)]]".
func (p *parser) icmp() *ICMP {
	c := &ICMP{}
	p.skip(false)
	if !isWordStart(p.peek()) {
		p.expected("an ICMP type after icmp (unreachable, packet_too_big, time_exceeded, ...)")
	}
	c.Type = p.word(p.pos)
	p.pos += len(c.Type)
	p.skip(false)
	if isWordStart(p.peek()) && !p.hasPrefix("mtu") {
		c.Code = p.word(p.pos)
		p.pos += len(c.Code)
		p.skip(false)
	}
	if p.keyword("mtu") {
		p.skip(false)
		v := p.uint("an MTU after mtu", math.MaxUint16)
		c.MTU = &v
		p.skip(false)
	}
	if p.peek() != '[' {
		p.expected("[seq:end(len)], the TCP segment the ICMP error quotes")
	}
	p.pos++
	p.skip(false)
	c.Seq, c.End, c.Len = p.seqRange(quotedForm, "the quoted sequence number in [start:end(len)]", "quoted length")
	if p.hasPrefix("/udp(") {
		p.pos += len("/udp(")
		end := strings.IndexAny(string(p.src[p.pos:]), ")\n")
		if end < 0 || p.src[p.pos+end] != ')' {
			p.expected("/udp(SPORT > DPORT)")
		}
		c.UDPEncap = strings.TrimSpace(string(p.src[p.pos : p.pos+end]))
		p.pos += end + 1
	}
	p.skip(false)
	if p.peek() != ']' {
		p.expected("] to close the quoted segment")
	}
	p.pos++
	return c
}

// ipFields parses FreeBSD's IP header prefix: "(tos 0x20)", "(ttl 64)"
// (IPv6: "(class 0x20)", "(hlim 64)"), or both, separated by commas.
func (p *parser) ipFields(pk *Packet) {
	open := p.pos
	p.pos++
	for {
		p.skip(false)
		kw := p.pos
		switch {
		case p.peek() == ')':
			p.pos++
			return
		case p.peek() == ',':
			p.pos++
		case p.keyword("tos") || p.keyword("class"): // IPv4 TOS, IPv6 traffic class
			if pk.TOS != nil {
				p.failAt(kw, "tos (class) is given twice")
			}
			p.skip(false)
			v := p.uint("a TOS byte after tos", math.MaxUint8)
			pk.TOS = &v
		case p.keyword("ttl") || p.keyword("hlim"): // IPv4 TTL, IPv6 hop limit
			if pk.TTL != nil {
				p.failAt(kw, "ttl (hlim) is given twice")
			}
			p.skip(false)
			v := p.uint("a TTL after ttl", math.MaxUint8)
			pk.TTL = &v
		case p.pos >= len(p.src) || p.peek() == '\n':
			p.failAt(open, "unterminated (: expected )")
		default:
			p.expected("tos N, class N, ttl N, hlim N or ) in the IP fields (...)")
		}
	}
}

// bracket parses "[flow N]" (tcpstated) and ECN markers ("[ect0]", "[ce]", ...).
func (p *parser) bracket(pk *Packet) {
	open := p.pos
	p.pos++
	for {
		p.skip(false)
		switch {
		case p.peek() == ']':
			p.pos++
			return
		case p.peek() == ',':
			p.pos++
		case p.keyword("flow"):
			p.skip(false)
			at := p.pos
			n := p.uint("a flow number after flow", 1000)
			if n == 0 {
				p.failAt(at, "flows are numbered from 1")
			}
			pk.Flow = int(n)
		case isWordStart(p.peek()):
			w := p.word(p.pos)
			switch strings.ToLower(w) {
			case "ect0", "ect1", "ect01", "ce", "noecn", "ecn":
				if pk.ECN != "" {
					pk.ECN += " "
				}
				pk.ECN += w
				p.pos += len(w)
			default:
				p.failAt(p.pos, "expected flow N or an ECN marker (ect0, ect1, ce, noecn) in [...], found %q", w)
			}
		case p.pos >= len(p.src) || p.peek() == '\n':
			p.failAt(open, "unterminated [: expected ]")
		default:
			p.expected("flow N, an ECN marker or ]")
		}
	}
}

// options parses "<mss 1460,sackOK,nop,nop,TS val 100 ecr 0,nop,wscale 7>"
// or "<...>". The list may wrap lines.
func (p *parser) options(pk *Packet) {
	open := p.pos
	p.pos++
	pk.HasOp = true
	p.skip(true)
	if p.hasPrefix("...") {
		p.pos += 3
		p.skip(true)
		if p.peek() != '>' {
			p.expected("> after <...")
		}
		p.pos++
		pk.AnyOp = true
		return
	}
	if p.peek() == '>' {
		p.pos++
		pk.Opts = []TCPOpt{}
		return
	}
	for {
		p.skip(true)
		pk.Opts = append(pk.Opts, p.option())
		p.skip(true)
		switch p.peek() {
		case ',':
			p.pos++
		case '>':
			p.pos++
			return
		default:
			if p.pos >= len(p.src) {
				p.failAt(open, "unterminated option list: expected > to close <")
			}
			p.expected("',' or '>' after a TCP option")
		}
	}
}

func (p *parser) option() TCPOpt {
	at := p.pos
	o := TCPOpt{Pos: p.posAt(at)}
	switch {
	case p.keyword("nop"):
		o.Kind = OptNOP
	case p.keyword("eol"):
		o.Kind = OptEOL
	case p.keyword("mss"):
		o.Kind = OptMSS
		p.skip(false)
		o.Val = p.uint("an MSS value after mss", math.MaxUint16)
	case p.keyword("wscale"):
		o.Kind = OptWScale
		p.skip(false)
		o.Val = p.uint("a shift count after wscale", 255)
	case p.keyword("sackOK"):
		o.Kind = OptSACKOK
	case p.keyword("sack"):
		o.Kind = OptSACK
		for {
			p.skip(false)
			if !isDigit(p.peek()) {
				break
			}
			a := p.uint("a SACK block start", math.MaxUint32)
			if p.peek() != ':' {
				p.expected("':' in a SACK block start:end")
			}
			p.pos++
			b := p.uint("a SACK block end", math.MaxUint32)
			o.Blocks = append(o.Blocks, [2]uint32{a, b})
		}
		if len(o.Blocks) == 0 {
			p.expected("at least one SACK block start:end after sack")
		}
		if len(o.Blocks) > 4 {
			p.failAt(at, "a SACK option holds at most 4 blocks, found %d", len(o.Blocks))
		}
	case p.keyword("TS"):
		o.Kind = OptTS
		p.skip(false)
		if !p.keyword("val") {
			p.expected("val after TS (TS val N ecr N)")
		}
		p.skip(false)
		o.Val = p.uint("a timestamp value after TS val", math.MaxUint32)
		p.skip(false)
		if !p.keyword("ecr") {
			p.expected("ecr after TS val N (TS val N ecr N)")
		}
		p.skip(false)
		o.Ecr = p.uint("a timestamp echo after ecr", math.MaxUint32)
	case isWordStart(p.peek()):
		// FO, FOEXP, md5, exp, ...: kept as written so the runner can say
		// precisely what it cannot encode.
		o.Kind = OptOther
		for p.pos < len(p.src) {
			c := p.src[p.pos]
			if c == ',' || c == '>' || c == '\n' {
				break
			}
			p.pos++
		}
		o.Text = strings.TrimSpace(string(p.src[at:p.pos]))
	default:
		p.expected("a TCP option (nop, eol, mss N, wscale N, sackOK, sack A:B, TS val N ecr N)")
	}
	return o
}

// syscall parses "name(args) = ret [ERRNO] [(note)]".
func (p *parser) syscall() *Syscall {
	s := &Syscall{Name: p.ident()}
	p.skip(false)
	if p.peek() != '(' {
		p.expected("'(' after the system call name " + strconv.Quote(s.Name))
	}
	s.Args = p.exprList('(', ')')
	p.skip(false)
	if p.peek() != '=' {
		p.expected("'= RESULT' after the system call's arguments")
	}
	p.pos++
	p.skip(false)
	s.Ret = p.expr()
	p.skip(false)
	if isWordStart(p.peek()) {
		at := p.pos
		s.Errno = p.ident()
		if !strings.HasPrefix(s.Errno, "E") {
			p.failAt(at, "expected an errno name (such as EINPROGRESS) after the result, found %q", s.Errno)
		}
		p.skip(false)
	}
	if p.peek() == '(' {
		// "(Operation now in progress)": free text up to the matching ')'.
		start := p.pos
		depth := 0
		for p.pos < len(p.src) && p.src[p.pos] != '\n' {
			switch p.src[p.pos] {
			case '(':
				depth++
			case ')':
				depth--
			}
			p.pos++
			if depth == 0 {
				break
			}
		}
		if depth != 0 {
			p.failAt(start, "unterminated note: expected ) on the same line")
		}
		s.Note = strings.TrimSpace(string(p.src[start+1 : p.pos-1]))
	}
	return s
}

func (p *parser) ident() string {
	start := p.pos
	if !isWordStart(p.peek()) {
		p.expected("a name")
	}
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.pos++
	}
	return string(p.src[start:p.pos])
}

// exprList parses open expr, expr, ... close; it may wrap lines.
func (p *parser) exprList(open, close byte) []*Expr {
	start := p.pos
	p.pos++
	var out []*Expr
	p.skip(true)
	if p.peek() == close {
		p.pos++
		return out
	}
	for {
		p.skip(true)
		out = append(out, p.expr())
		p.skip(true)
		switch p.peek() {
		case ',':
			p.pos++
		case close:
			p.pos++
			return out
		default:
			if p.pos >= len(p.src) {
				p.failAt(start, "unterminated %c: expected %c", open, close)
			}
			p.expected(fmt.Sprintf("',' or '%c'", close))
		}
	}
}

// expr parses an argument: a number, ..., a symbol, "string", [array],
// {struct}, name(call) or A|B.
func (p *parser) expr() *Expr {
	first := p.unary()
	p.skip(false)
	if p.peek() != '|' || p.peekAt(1) == '|' {
		return first
	}
	or := &Expr{Pos: first.Pos, Kind: ExprOr, Elems: []*Expr{first}}
	for p.peek() == '|' {
		p.pos++
		p.skip(true)
		or.Elems = append(or.Elems, p.unary())
		p.skip(false)
	}
	return or
}

func (p *parser) unary() *Expr {
	start := p.pos
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		p.failAt(start, "expression nested more than %d deep", maxDepth)
	}
	pos := p.posAt(start)
	switch c := p.peek(); {
	case c == '-' && isDigit(p.peekAt(1)):
		p.pos++
		e := p.number()
		e.Int, e.Pos = -e.Int, pos
		return e
	case isDigit(c):
		return p.number()
	case p.hasPrefix("..."):
		p.pos += 3
		return &Expr{Pos: pos, Kind: ExprEllipsis}
	case c == '"':
		return &Expr{Pos: pos, Kind: ExprString, Name: p.quoted()}
	case c == '[':
		return &Expr{Pos: pos, Kind: ExprArray, Elems: p.exprList('[', ']')}
	case c == '{':
		return p.structLit()
	case isWordStart(c):
		name := p.ident()
		if p.peek() == '(' {
			return &Expr{Pos: pos, Kind: ExprCall, Name: name, Elems: p.exprList('(', ')')}
		}
		return &Expr{Pos: pos, Kind: ExprSymbol, Name: name}
	}
	p.expected("an expression (a number, ..., a NAME, \"string\", [array] or {struct})")
	return nil
}

func (p *parser) number() *Expr {
	e := &Expr{Pos: p.posAt(p.pos), Kind: ExprInt}
	e.Hex = p.peek() == '0' && (p.peekAt(1) == 'x' || p.peekAt(1) == 'X')
	e.Int = int64(p.uint64("a number", math.MaxInt64))
	return e
}

// structLit parses {name=value, ..., value}.
func (p *parser) structLit() *Expr {
	start := p.pos
	e := &Expr{Pos: p.posAt(start), Kind: ExprStruct}
	p.pos++
	for {
		p.skip(true)
		if p.peek() == '}' {
			p.pos++
			return e
		}
		var f Field
		if isWordStart(p.peek()) {
			save := p.pos
			name := p.ident()
			p.skip(false)
			if p.peek() == '=' && p.peekAt(1) != '=' {
				p.pos++
				p.skip(true)
				f.Name = name
			} else {
				p.pos = save
			}
		}
		f.Value = p.expr()
		e.Fields = append(e.Fields, f)
		p.skip(true)
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return e
		default:
			if p.pos >= len(p.src) {
				p.failAt(start, "unterminated {: expected }")
			}
			p.expected("',' or '}' in a struct literal")
		}
	}
}
