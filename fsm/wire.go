package fsm

import "strings"

// Flags are the TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
type Flags uint8

const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

var flagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// Has reports whether every bit of m is set in f.
func (f Flags) Has(m Flags) bool { return f&m == m }

// Names lists the set flags in wire order, e.g. ["SYN", "ACK"].
func (f Flags) Names() []string {
	var out []string
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String renders the flags as "SYN|ACK"; no flags render as "none".
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	return strings.Join(f.Names(), "|")
}

// SACKBlock is one block of an RFC 2018 SACK option: [Start, End).
type SACKBlock struct{ Start, End Seq }

// MaxSACKBlocks is the most blocks a 40-byte option space can carry.
const MaxSACKBlocks = 4

// Options is the parsed TCP option list. Absent options have their zero
// value and a false Has* flag. Defaults when absent are the RFCs': MSS 536
// for IPv4 and 1220 for IPv6 (RFC 9293 §3.7.1), no window scaling, no SACK,
// no timestamps.
type Options struct {
	MSS           uint16 // valid when HasMSS
	HasMSS        bool
	WScale        uint8 // shift count as sent (RFC 7323 §2.3); valid when HasWScale
	HasWScale     bool
	SACKPermitted bool
	NumSACK       uint8 // blocks used in SACK
	SACK          [MaxSACKBlocks]SACKBlock
	HasTimestamp  bool
	TSVal, TSEcr  uint32
	Unknown       uint8 // options skipped by their length (kinds the codec does not know)

	HasMD5 bool     // TCP-MD5 signature option, kind 19 (RFC 2385; md5.go)
	MD5    [16]byte // the digest as found (parse); filled in when sending

	// FastOpen is a TCP Fast Open option (RFC 7413 §4.1.1): kind 34, or
	// kind 254 with magic 0xF989 when FastOpenExp (RFC 6994). CookieLen 0
	// is a cookie request. The codec keeps any length, the engine judges
	// it (fastopen.go); only the first 16 bytes (the most a valid cookie
	// has) are kept, the rest are written back as zeros.
	FastOpen    bool
	FastOpenExp bool
	CookieLen   uint8
	Cookie      [FastOpenCookieMax]byte
}

// Segment is the plain value of one TCP segment (the "Repr" in smoltcp's
// terms): the state machine works on this, never on raw bytes.
type Segment struct {
	SrcPort, DstPort uint16
	Seq              Seq // SEG.SEQ
	Ack              Seq // SEG.ACK, meaningful only with FlagACK
	Flags            Flags
	Window           uint16 // SEG.WND as sent, before window scaling
	Checksum         uint16 // as found on the wire (parse) or computed (encode)
	Urgent           uint16
	Options          Options
	Payload          []byte // aliases the input buffer when parsed
}

// Len is SEG.LEN: the payload length plus one for each of SYN and FIN
// (RFC 9293 §3.4).
func (s *Segment) Len() Size {
	n := Size(len(s.Payload))
	if s.Flags&FlagSYN != 0 {
		n++
	}
	if s.Flags&FlagFIN != 0 {
		n++
	}
	return n
}

// ParseError reports malformed input: which layer and field is wrong, and why.
type ParseError struct {
	Layer  string // "ipv4", "ipv6", "tcp", "tcp option"
	Field  string // e.g. "data offset", "total length", "mss length"
	Reason string
}

func (e *ParseError) Error() string { return e.Layer + " " + e.Field + ": " + e.Reason }
