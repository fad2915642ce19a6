package fsm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// Header lengths in bytes (RFC 9293 §3.1): the data offset counts 32-bit
// words, from 5 (no options) to 15 (40 bytes of options).
const (
	MinHeaderLen = 20
	MaxHeaderLen = 60
)

// Byte offsets of the fixed TCP header fields (RFC 9293 §3.1).
const (
	tcpSrcPort  = 0
	tcpDstPort  = 2
	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12 // high nibble; the low nibble is reserved
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16
	tcpUrgent   = 18
)

// ParseSegment decodes a TCP segment (header, options, payload). It checks
// structure only, not the checksum (see TCPChecksumValid). The Payload
// aliases b. The four reserved bits of byte 12 are ignored. It does not
// allocate unless it returns an error.
func ParseSegment(b []byte) (Segment, error) {
	var s Segment
	if err := parseSegment(b, &s); err != nil {
		return Segment{}, err
	}
	return s, nil
}

// parseSegment is ParseSegment into a zero s, which the engine keeps on
// its stack: a Segment is over a hundred bytes, and returning one copies
// it.
func parseSegment(b []byte, s *Segment) error {
	if len(b) < MinHeaderLen {
		return &ParseError{Layer: "tcp", Field: "header length", Reason: fmt.Sprintf(
			"segment is %d bytes, shorter than the %d-byte minimum header", len(b), MinHeaderLen)}
	}
	words := int(b[tcpDataOff] >> 4)
	if words < 5 {
		return &ParseError{Layer: "tcp", Field: "data offset", Reason: fmt.Sprintf(
			"%d words (%d bytes) is below the minimum of 5 words (%d bytes); the segment is %d bytes",
			words, 4*words, MinHeaderLen, len(b))}
	}
	hl := 4 * words
	if hl > len(b) {
		return &ParseError{Layer: "tcp", Field: "data offset", Reason: fmt.Sprintf(
			"%d words (%d bytes) runs past the %d-byte segment", words, hl, len(b))}
	}
	s.SrcPort = binary.BigEndian.Uint16(b[tcpSrcPort:])
	s.DstPort = binary.BigEndian.Uint16(b[tcpDstPort:])
	s.Seq = Seq(binary.BigEndian.Uint32(b[tcpSeq:]))
	s.Ack = Seq(binary.BigEndian.Uint32(b[tcpAck:]))
	s.Flags = Flags(b[tcpFlags])
	s.Window = binary.BigEndian.Uint16(b[tcpWindow:])
	s.Checksum = binary.BigEndian.Uint16(b[tcpChecksum:])
	s.Urgent = binary.BigEndian.Uint16(b[tcpUrgent:])
	if err := parseOptions(b[MinHeaderLen:hl], &s.Options); err != nil {
		return err
	}
	s.Payload = b[hl:]
	return nil
}

// HeaderLen is the encoded header length of s: 20 plus its options, padded
// to 4 bytes.
func (s *Segment) HeaderLen() int {
	return MinHeaderLen + s.Options.optionsLen()
}

// AppendSegment appends the wire encoding of s (header, options, payload)
// to dst, with the checksum computed over the pseudo-header of src and
// dstAddr; s.Checksum is ignored. It does not allocate when dst has the
// capacity. The reserved bits are sent as zero (RFC 9293 §3.1).
func AppendSegment(dst []byte, s *Segment, src, dstAddr netip.Addr) []byte {
	start := len(dst)
	hl := s.HeaderLen()
	dst = slices.Grow(dst, hl+len(s.Payload))
	dst = binary.BigEndian.AppendUint16(dst, s.SrcPort)
	dst = binary.BigEndian.AppendUint16(dst, s.DstPort)
	dst = binary.BigEndian.AppendUint32(dst, uint32(s.Seq))
	dst = binary.BigEndian.AppendUint32(dst, uint32(s.Ack))
	dst = append(dst, byte(hl/4)<<4, byte(s.Flags))
	dst = binary.BigEndian.AppendUint16(dst, s.Window)
	dst = append(dst, 0, 0) // checksum, filled in below
	dst = binary.BigEndian.AppendUint16(dst, s.Urgent)
	dst = appendOptions(dst, &s.Options)
	dst = append(dst, s.Payload...)
	seg := dst[start:]
	sum := Checksum(seg, PseudoHeaderSum(src, dstAddr, len(seg)))
	binary.BigEndian.PutUint16(seg[tcpChecksum:], FoldChecksum(sum))
	return dst
}

// flagLetters are packetdrill's flag letters in wire bit order
// (FIN SYN RST PSH ACK URG ECE CWR); ACK is '.'.
const flagLetters = "FSRP.UEW"

// String renders a segment for humans, tcpdump/packetdrill style, with
// absolute sequence numbers:
//
//	40000 > 80 S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>
//	80 > 40000 S. 0:0(0) ack 1 win 65535 <mss 1460>
//	40000 > 80 P. 1:101(100) ack 1 win 502
//
// Flags are packetdrill letters in wire bit order (F S R P . U E W), or
// "none". "start:end(len)" counts payload bytes only. "ack" is shown with
// ACK set, "urg" with URG set.
func (s Segment) String() string {
	b := make([]byte, 0, 96)
	b = strconv.AppendUint(b, uint64(s.SrcPort), 10)
	b = append(b, " > "...)
	b = strconv.AppendUint(b, uint64(s.DstPort), 10)
	b = append(b, ' ')
	if s.Flags == 0 {
		b = append(b, "none"...)
	}
	for i := range flagLetters {
		if s.Flags&(1<<i) != 0 {
			b = append(b, flagLetters[i])
		}
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(s.Seq), 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(s.Seq.Add(Size(len(s.Payload)))), 10)
	b = append(b, '(')
	b = strconv.AppendInt(b, int64(len(s.Payload)), 10)
	b = append(b, ')')
	if s.Flags&FlagACK != 0 {
		b = append(b, " ack "...)
		b = strconv.AppendUint(b, uint64(s.Ack), 10)
	}
	b = append(b, " win "...)
	b = strconv.AppendUint(b, uint64(s.Window), 10)
	if s.Flags&FlagURG != 0 {
		b = append(b, " urg "...)
		b = strconv.AppendUint(b, uint64(s.Urgent), 10)
	}
	n := len(b)
	b = s.Options.appendText(append(b, " <"...))
	if len(b) == n+2 {
		b = b[:n] // no options
	} else {
		b = append(b, '>')
	}
	return string(b)
}
