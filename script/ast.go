package script

import (
	"strconv"
	"strings"
	"time"
)

// Pos is a position in a script: 1-based line and column (in characters).
type Pos struct{ Line, Col int }

func (p Pos) String() string { return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col) }

// Script is a parsed packetdrill script.
type Script struct {
	Name    string      // file name, for messages
	Options []HeaderOpt // --name=value options, in order
	Compare CompareMode // from a "// compare: strict|semantic" header comment; CompareAuto if none
	Events  []*Event    // timed lines, in order
	Lines   int         // number of source lines
	Source  []byte      // the text parsed
	Defines []string    // the names #ifdef saw as defined
	hdr     *header     // the options resolved
}

// HeaderOpt is one --name=value option line.
type HeaderOpt struct {
	Pos      Pos
	Name     string // without the leading "--"
	Value    string // "" when written without "="
	HasValue bool
	Text     string // as written
}

// EventKind says what a timed line does.
type EventKind uint8

const (
	EventPacketIn  EventKind = iota + 1 // "<": a segment the runner injects
	EventPacketOut                      // ">": a segment the engine must emit
	EventSyscall                        // a system call on the runner's sockets
	EventSkip                           // a shell command or python block: not run
)

// Event is one timed line (or multi-line statement) of a script.
type Event struct {
	Pos     Pos
	EndLine int    // last source line of the statement
	Text    string // the source text
	Time    Time
	Kind    EventKind
	Packet  *Packet  // EventPacketIn, EventPacketOut
	Syscall *Syscall // EventSyscall
	Skip    *Skip    // EventSkip
}

// TimeKind is the form of an event's time.
type TimeKind uint8

const (
	TimeExact    TimeKind = iota + 1 // "0.100" or "+0.1"
	TimeAny                          // "*"
	TimeRange                        // "0.1~0.2", "+0~+0.04"
	TimeBlocking                     // "0.1...0.2": a system call that blocks from start to end
	TimeNone                         // no time written (a leading `command`): runs at the previous time
)

// TimeVal is one time value: seconds, absolute or relative ("+").
type TimeVal struct {
	D   time.Duration
	Rel bool
}

func (t TimeVal) String() string {
	s := formatSeconds(t.D)
	if t.Rel {
		return "+" + s
	}
	return s
}

// Time is an event's time specification.
type Time struct {
	Kind       TimeKind
	Start, End TimeVal // End for TimeRange and TimeBlocking
}

func (t Time) String() string {
	switch t.Kind {
	case TimeAny:
		return "*"
	case TimeRange:
		return t.Start.String() + "~" + t.End.String()
	case TimeBlocking:
		return t.Start.String() + "..." + t.End.String()
	case TimeNone:
		return ""
	}
	return t.Start.String()
}

// formatSeconds renders d as seconds with 3 to 6 decimals ("0.100",
// "1.000250"), as packetdrill scripts write times.
func formatSeconds(d time.Duration) string {
	neg := ""
	if d < 0 {
		neg, d = "-", -d
	}
	us := d / time.Microsecond
	f := strings.TrimRight(strconv.FormatInt(int64(us%1e6)+1e6, 10)[1:], "0")
	for len(f) < 3 {
		f += "0"
	}
	return neg + strconv.FormatInt(int64(us/1e6), 10) + "." + f
}

// Direction of a packet line.
type Direction uint8

const (
	Inbound  Direction = iota + 1 // "<": from the remote peer to the engine
	Outbound                      // ">": emitted by the engine
)

// Packet is a packet line: "< S. 0:0(0) ack 1 win 65535 <mss 1460>".
type Packet struct {
	Dir   Direction
	Flow  int      // tcpstated extension "[flow N]"; 0 means flow 1
	ECN   string   // "[ect0]" and friends: parsed, not supported
	Flags string   // as written: "S.", "P.", ".", "-"
	Seq   uint32   // start, relative to the sender's ISN
	End   uint32   // start+len
	Len   uint32   // payload bytes
	Ack   *uint32  // "ack N", relative to the receiver's ISN
	Win   *uint32  // "win N": the window field as sent
	Urg   *uint32  // "urg N"
	Opts  []TCPOpt // "<...>" list; nil when omitted
	HasOp bool     // an option list was written (even "<>")
	AnyOp bool     // "<...>": options are not checked

	// FreeBSD's dialect.
	TOS      *uint32 // "(tos 0x20)": the IPv4 TOS or IPv6 traffic class byte
	TTL      *uint32 // "(ttl 64)": the IPv4 TTL or IPv6 hop limit
	SeqAny   bool    // "...(len)": any sequence number (only for > lines)
	SeqAbs   bool    // "N:N(N)!": seq and ack are absolute, not relative to the ISNs
	UDPEncap string  // "/udp(SPORT > DPORT)": TCP over UDP (RFC 6951 style), as written
	ICMP     *ICMP   // "< icmp ...": an ICMP error quoting a TCP header; Flags etc. unset
}

// ICMP is an ICMP or ICMPv6 error line, as packetdrill writes it:
//
//	< icmp unreachable port_unreachable [1:1(0)]
//	< icmp unreachable frag_needed mtu 1200 [1:1461(1460)]
//	< icmp packet_too_big mtu 1280 [1:1441(1440)]
//
// The bracket is the quoted TCP segment, relative to the engine's ISN.
type ICMP struct {
	Type     string  // unreachable, packet_too_big, time_exceeded, parameter_problem, ...
	Code     string  // port_unreachable, frag_needed, code_N, ...; "" when none is written
	MTU      *uint32 // "mtu N"
	Seq, End uint32  // the quoted segment
	Len      uint32
	UDPEncap string // "/udp(...)" inside the bracket
}

func (c *ICMP) String() string {
	var b strings.Builder
	b.WriteString("icmp " + c.Type)
	if c.Code != "" {
		b.WriteString(" " + c.Code)
	}
	if c.MTU != nil {
		b.WriteString(" mtu " + u32(*c.MTU))
	}
	b.WriteString(" [" + u32(c.Seq) + ":" + u32(c.End) + "(" + u32(c.Len) + ")")
	if c.UDPEncap != "" {
		b.WriteString("/udp(" + c.UDPEncap + ")")
	}
	b.WriteString("]")
	return b.String()
}

// TCPOptKind names a TCP option in packetdrill syntax.
type TCPOptKind uint8

const (
	OptNOP TCPOptKind = iota + 1
	OptEOL
	OptMSS
	OptWScale
	OptSACKOK
	OptSACK
	OptTS
	OptOther // an option tcpstated cannot encode (FO, md5, exp, ...)
)

// TCPOpt is one option in a packet line.
type TCPOpt struct {
	Pos    Pos
	Kind   TCPOptKind
	Val    uint32      // MSS, window scale shift, TS val
	Ecr    uint32      // TS ecr
	Blocks [][2]uint32 // SACK blocks, relative
	Text   string      // OptOther: as written
}

func (o TCPOpt) String() string {
	switch o.Kind {
	case OptNOP:
		return "nop"
	case OptEOL:
		return "eol"
	case OptMSS:
		return "mss " + u32(o.Val)
	case OptWScale:
		return "wscale " + u32(o.Val)
	case OptSACKOK:
		return "sackOK"
	case OptSACK:
		var b strings.Builder
		b.WriteString("sack")
		for _, blk := range o.Blocks {
			b.WriteString(" " + u32(blk[0]) + ":" + u32(blk[1]))
		}
		return b.String()
	case OptTS:
		return "TS val " + u32(o.Val) + " ecr " + u32(o.Ecr)
	}
	return o.Text
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// String renders the packet line without its time, in canonical form.
func (p *Packet) String() string {
	var b strings.Builder
	if p.Dir == Inbound {
		b.WriteString("< ")
	} else {
		b.WriteString("> ")
	}
	var br []string
	if p.Flow != 0 {
		br = append(br, "flow "+strconv.Itoa(p.Flow))
	}
	if p.ECN != "" {
		br = append(br, p.ECN)
	}
	if len(br) > 0 {
		b.WriteString("[" + strings.Join(br, " ") + "] ")
	}
	var ip []string
	if p.TOS != nil {
		ip = append(ip, "tos 0x"+strconv.FormatUint(uint64(*p.TOS), 16))
	}
	if p.TTL != nil {
		ip = append(ip, "ttl "+u32(*p.TTL))
	}
	if len(ip) > 0 {
		b.WriteString("(" + strings.Join(ip, ", ") + ") ")
	}
	if p.ICMP != nil {
		b.WriteString(p.ICMP.String())
		return b.String()
	}
	b.WriteString(p.body())
	if p.UDPEncap != "" {
		b.WriteString("/udp(" + p.UDPEncap + ")")
	}
	return b.String()
}

// body is the packet without direction and brackets: "S. 0:0(0) ack 1 ...".
func (p *Packet) body() string {
	var b strings.Builder
	b.WriteString(p.Flags)
	if p.SeqAny {
		b.WriteString(" ...(" + u32(p.Len) + ")")
	} else {
		b.WriteString(" " + u32(p.Seq) + ":" + u32(p.End) + "(" + u32(p.Len) + ")")
	}
	if p.SeqAbs {
		b.WriteString("!")
	}
	if p.Ack != nil {
		b.WriteString(" ack " + u32(*p.Ack))
	}
	if p.Win != nil {
		b.WriteString(" win " + u32(*p.Win))
	}
	if p.Urg != nil {
		b.WriteString(" urg " + u32(*p.Urg))
	}
	switch {
	case p.AnyOp:
		b.WriteString(" <...>")
	case p.HasOp:
		b.WriteString(" <" + optsString(p.Opts) + ">")
	}
	return b.String()
}

func optsString(opts []TCPOpt) string {
	s := make([]string, len(opts))
	for i, o := range opts {
		s[i] = o.String()
	}
	return strings.Join(s, ",")
}

// ExprKind is the form of a system call argument or result.
type ExprKind uint8

const (
	ExprInt      ExprKind = iota + 1 // 42, -1, 0x800
	ExprEllipsis                     // ...
	ExprSymbol                       // SOCK_STREAM, TCP_ESTABLISHED
	ExprString                       // "text"
	ExprArray                        // [1000]
	ExprStruct                       // {tcpi_state=TCP_ESTABLISHED, ...}
	ExprCall                         // htons(8080), inet_addr("192.0.2.1")
	ExprOr                           // O_RDWR|O_NONBLOCK
)

// Expr is a system call argument or return value.
type Expr struct {
	Pos    Pos
	Kind   ExprKind
	Int    int64
	Hex    bool   // written in hex
	Name   string // symbol, call name or string value
	Elems  []*Expr
	Fields []Field // ExprStruct; a field with Name "" is "..." or a bare value
}

// Field is name=value in a struct literal.
type Field struct {
	Name  string
	Value *Expr
}

func (e *Expr) String() string {
	if e == nil {
		return ""
	}
	switch e.Kind {
	case ExprInt:
		if e.Hex && e.Int >= 0 {
			return "0x" + strconv.FormatInt(e.Int, 16)
		}
		return strconv.FormatInt(e.Int, 10)
	case ExprEllipsis:
		return "..."
	case ExprSymbol:
		return e.Name
	case ExprString:
		return strconv.Quote(e.Name)
	case ExprArray:
		return "[" + exprList(e.Elems) + "]"
	case ExprStruct:
		s := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			if f.Name == "" {
				s[i] = f.Value.String()
			} else {
				s[i] = f.Name + "=" + f.Value.String()
			}
		}
		return "{" + strings.Join(s, ", ") + "}"
	case ExprCall:
		return e.Name + "(" + exprList(e.Elems) + ")"
	case ExprOr:
		s := make([]string, len(e.Elems))
		for i, x := range e.Elems {
			s[i] = x.String()
		}
		return strings.Join(s, "|")
	}
	return "?"
}

func exprList(es []*Expr) string {
	s := make([]string, len(es))
	for i, x := range es {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

// Syscall is a system call line: "connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)".
type Syscall struct {
	Name  string
	Args  []*Expr
	Ret   *Expr
	Errno string // "EINPROGRESS"; "" when none
	Note  string // the parenthesized text after the errno, ignored
}

func (s *Syscall) String() string {
	r := s.Name + "(" + exprList(s.Args) + ") = " + s.Ret.String()
	if s.Errno != "" {
		r += " " + s.Errno
	}
	if s.Note != "" {
		r += " (" + s.Note + ")"
	}
	return r
}

// result renders "= ret [ERRNO]" for reports.
func (s *Syscall) result() string {
	r := "= " + s.Ret.String()
	if s.Errno != "" {
		r += " " + s.Errno
	}
	return r
}

// SkipKind says why a line is not run.
type SkipKind uint8

const (
	SkipShell  SkipKind = iota + 1 // `command`
	SkipPython                     // %{ ... }%
)

// Skip is a line a service cannot honour: it is listed as skipped.
type Skip struct {
	Kind SkipKind
	Body string // between the delimiters
}

// Format renders the script in canonical form: the header options, the
// compare directive, then one line per event. Parsing the result gives
// back the same script.
func (s *Script) Format() string {
	var b strings.Builder
	for _, o := range s.Options {
		b.WriteString(o.Text + "\n")
	}
	if s.Compare != CompareAuto {
		b.WriteString("// compare: " + s.Compare.String() + "\n")
	}
	for _, ev := range s.Events {
		b.WriteString(ev.String() + "\n")
	}
	return b.String()
}

// String renders an event as a script line.
func (ev *Event) String() string {
	t := ev.Time.String()
	var body string
	switch ev.Kind {
	case EventPacketIn, EventPacketOut:
		body = ev.Packet.String()
	case EventSyscall:
		body = ev.Syscall.String()
	case EventSkip:
		if ev.Skip.Kind == SkipShell {
			body = "`" + ev.Skip.Body + "`"
		} else {
			body = "%{" + ev.Skip.Body + "}%"
		}
	}
	if t == "" {
		return body
	}
	return t + " " + body
}
