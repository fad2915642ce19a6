package fsm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ICMP input (RFC 9293 §3.9.2.2, RFC 1122 §4.2.3.9, RFC 5927, RFC 5461,
// RFC 1191, RFC 8201). An ICMP or ICMPv6 error quotes the IP header and at
// least the first 8 bytes of the TCP header of a segment we sent; the
// engine finds the connection from the quoted ports, checks that the
// quoted sequence number is in flight (RFC 5927 §4.1), and then acts on
// the error by its class: hard errors abort an opening connection, soft
// errors are recorded, Packet Too Big lowers the MSS.

const (
	protoICMP   = 1
	protoICMPv6 = 58

	// Path MTU floors: RFC 8201 §4: an IPv6 node MUST NOT reduce its PMTU
	// below 1280. RFC 1191 §3 allows IPv4 down to 68; like FreeBSD the
	// engine stops at 296 (the smallest RFC 1191 §7 plateau above 68), so a
	// forged "fragmentation needed" cannot shrink segments to a few bytes
	// (RFC 5927 §7.2).
	pmtuFloor4 = 296
	pmtuFloor6 = 1280
)

// ICMPMessage is a parsed ICMP or ICMPv6 message.
type ICMPMessage struct {
	V6         bool
	Type, Code uint8
	// MTU is the next-hop MTU of an ICMPv4 "fragmentation needed" (RFC 1191
	// §4; 0 from an old router) or the MTU of an ICMPv6 Packet Too Big.
	MTU uint32
	// IsError is set for the error types that quote a datagram; the fields
	// below are only set then.
	IsError bool
	// Quoted is the TCP connection of the quoted segment, from our side:
	// Local is the quoted source, Remote the quoted destination.
	Quoted Tuple
	// Seq is the quoted segment's sequence number.
	Seq Seq
	// QuotedLen is the quoted IP datagram's total length (IPv4) or its
	// payload length plus 40 (IPv6), for RFC 1191 §5's plateau search.
	QuotedLen int
}

// ICMP types and codes the engine names (RFC 792, RFC 1812 §5.2.7.1,
// RFC 4443).
const (
	icmp4Unreach     = 3
	icmp4SourceQ     = 4
	icmp4Redirect    = 5
	icmp4TimeExc     = 11
	icmp4ParamProb   = 12
	icmp6Unreach     = 1
	icmp6PacketBig   = 2
	icmp6TimeExc     = 3
	icmp6ParamProb   = 4
	icmp4FragNeeded  = 4
	icmp6NextHeader  = 1 // parameter problem: unrecognized Next Header
	icmp4ProtoUnr    = 2
	icmp4PortUnr     = 3
	icmp6PortUnr     = 4
	icmp6AdminProhib = 1
)

// ParseICMP parses an ICMP (src and dst IPv4) or ICMPv6 message: the type,
// the code, the checksum (ICMPv6's covers the RFC 8200 §8.1 pseudo-header),
// and for an error the quoted IP and TCP headers. A malformed message is a
// *ParseError.
func ParseICMP(src, dst netip.Addr, b []byte) (ICMPMessage, error) {
	var m ICMPMessage
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return m, &ParseError{Layer: "icmp", Field: "addresses", Reason: "source and destination must both be IPv4 or both IPv6"}
	}
	m.V6 = !src.Is4()
	layer := "icmp"
	if m.V6 {
		layer = "icmpv6"
	}
	if len(b) < 8 {
		return m, &ParseError{Layer: layer, Field: "length", Reason: fmt.Sprintf("message is %d bytes, shorter than the 8-byte header", len(b))}
	}
	var sum uint32
	if m.V6 {
		sum = PseudoHeaderSumProto(src, dst, len(b), protoICMPv6)
	}
	if FoldChecksum(Checksum(b, sum)) != 0 {
		return m, &ParseError{Layer: layer, Field: "checksum", Reason: fmt.Sprintf("0x%04x is wrong for this message", binary.BigEndian.Uint16(b[2:]))}
	}
	m.Type, m.Code = b[0], b[1]
	switch {
	case !m.V6 && m.Type == icmp4Unreach && m.Code == icmp4FragNeeded:
		m.MTU = uint32(binary.BigEndian.Uint16(b[6:]))
	case m.V6 && m.Type == icmp6PacketBig:
		m.MTU = binary.BigEndian.Uint32(b[4:])
	}
	if m.V6 {
		m.IsError = m.Type < 128 // RFC 4443 §2.1: 0-127 are errors
	} else {
		switch m.Type {
		case icmp4Unreach, icmp4SourceQ, icmp4Redirect, icmp4TimeExc, icmp4ParamProb:
			m.IsError = true
		}
	}
	if !m.IsError {
		return m, nil
	}
	q := b[8:]
	var qsrc, qdst netip.Addr
	var tcp []byte
	if m.V6 {
		if len(q) < ipv6HeaderLen+8 {
			return m, &ParseError{Layer: layer, Field: "quoted datagram", Reason: fmt.Sprintf("%d bytes, shorter than an IPv6 header and 8 bytes of TCP (48)", len(q))}
		}
		if q[0]>>4 != 6 {
			return m, &ParseError{Layer: layer, Field: "quoted datagram", Reason: fmt.Sprintf("version %d, not 6", q[0]>>4)}
		}
		if q[6] != protoTCP {
			return m, &ParseError{Layer: layer, Field: "quoted next header", Reason: fmt.Sprintf("%d is not TCP (6)", q[6])}
		}
		qsrc, qdst = netip.AddrFrom16([16]byte(q[8:24])), netip.AddrFrom16([16]byte(q[24:40]))
		m.QuotedLen = ipv6HeaderLen + int(binary.BigEndian.Uint16(q[4:]))
		tcp = q[ipv6HeaderLen:]
	} else {
		if len(q) < ipv4HeaderLen+8 {
			return m, &ParseError{Layer: layer, Field: "quoted datagram", Reason: fmt.Sprintf("%d bytes, shorter than an IPv4 header and 8 bytes of TCP (28)", len(q))}
		}
		ihl := 4 * int(q[0]&0x0f)
		if q[0]>>4 != 4 || ihl < ipv4HeaderLen || len(q) < ihl+8 {
			return m, &ParseError{Layer: layer, Field: "quoted datagram", Reason: fmt.Sprintf("version %d, header %d bytes in %d: not an IPv4 header followed by 8 bytes", q[0]>>4, ihl, len(q))}
		}
		if q[9] != protoTCP {
			return m, &ParseError{Layer: layer, Field: "quoted protocol", Reason: fmt.Sprintf("%d is not TCP (6)", q[9])}
		}
		qsrc, qdst = netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20]))
		m.QuotedLen = int(binary.BigEndian.Uint16(q[2:]))
		tcp = q[ihl:]
	}
	m.Quoted = Tuple{
		Local:  netip.AddrPortFrom(qsrc, binary.BigEndian.Uint16(tcp[0:])),
		Remote: netip.AddrPortFrom(qdst, binary.BigEndian.Uint16(tcp[2:])),
	}
	m.Seq = Seq(binary.BigEndian.Uint32(tcp[4:]))
	return m, nil
}

// PseudoHeaderSumProto is PseudoHeaderSum for another upper-layer protocol
// (ICMPv6's checksum covers the same pseudo-header with next header 58).
func PseudoHeaderSumProto(src, dst netip.Addr, length int, proto uint8) uint32 {
	// Ones'-complement subtraction of 6 is the addition of ^6 (0xfff9).
	return fold64(uint64(PseudoHeaderSum(src, dst, length)) + 0xfff9 + uint64(proto))
}

// icmpPayload finds an ICMP or ICMPv6 message in an IP packet (IPv6: as the
// first next header). ok is false for anything else.
func icmpPayload(b []byte) (src, dst netip.Addr, icmp []byte, ok bool) {
	if len(b) == 0 {
		return
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < ipv4HeaderLen || b[9] != protoICMP {
			return
		}
		hl := 4 * int(b[0]&0x0f)
		total := int(binary.BigEndian.Uint16(b[2:]))
		if hl < ipv4HeaderLen || total < hl || total > len(b) || FoldChecksum(Checksum(b[:hl], 0)) != 0 {
			return
		}
		if frag := binary.BigEndian.Uint16(b[6:]); frag&(ipv4FlagMF|ipv4FragOffMask) != 0 {
			return
		}
		return netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20])), b[hl:total:total], true
	case 6:
		if len(b) < ipv6HeaderLen || b[6] != protoICMPv6 {
			return
		}
		n := ipv6HeaderLen + int(binary.BigEndian.Uint16(b[4:]))
		if n > len(b) {
			return
		}
		return netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40])), b[ipv6HeaderLen:n:n], true
	}
	return
}

// icmpClass is what an ICMP error means for TCP.
type icmpClass uint8

const (
	icmpIgnored icmpClass = iota // not TCP's business (redirect, source quench, informational)
	icmpSoft                     // RFC 1122 §4.2.3.9 soft error: recorded, never aborts (MUST-56)
	icmpHard                     // hard: aborts a connection in SYN-SENT
	icmpHardBSD                  // hard only with icmp_hard_bsd (FreeBSD), else soft
	icmpPMTU                     // fragmentation needed / Packet Too Big
)

// classify sorts a message into its class and the error it reports.
func (m *ICMPMessage) classify() (icmpClass, error) {
	if m.V6 {
		switch m.Type {
		case icmp6Unreach:
			switch m.Code {
			case icmp6PortUnr:
				return icmpHard, ErrConnectionRefused
			case icmp6AdminProhib:
				return icmpHardBSD, ErrConnectionRefused
			}
			return icmpSoft, ErrHostUnreachable
		case icmp6PacketBig:
			return icmpPMTU, nil
		case icmp6TimeExc:
			if m.Code == 0 {
				return icmpHardBSD, ErrHostUnreachable
			}
			return icmpSoft, ErrHostUnreachable
		case icmp6ParamProb:
			if m.Code == icmp6NextHeader {
				// RFC 4443 §3.4: TCP unknown to the peer's stack, the
				// IPv6 form of protocol unreachable.
				return icmpHard, ErrConnectionRefused
			}
			return icmpSoft, ErrHostUnreachable
		}
		return icmpIgnored, nil
	}
	switch m.Type {
	case icmp4Unreach:
		switch m.Code {
		case icmp4ProtoUnr, icmp4PortUnr:
			return icmpHard, ErrConnectionRefused
		case icmp4FragNeeded:
			return icmpPMTU, nil
		case 9, 10, 13: // net, host, communication administratively prohibited
			return icmpHardBSD, ErrConnectionRefused
		case 0, 6, 11:
			return icmpSoft, ErrNetUnreachable
		}
		return icmpSoft, ErrHostUnreachable
	case icmp4TimeExc:
		if m.Code == 0 {
			return icmpHardBSD, ErrHostUnreachable
		}
		return icmpSoft, ErrHostUnreachable
	case icmp4ParamProb:
		return icmpSoft, ErrHostUnreachable
	}
	return icmpIgnored, nil // source quench (MUST-55), redirect (IP's)
}

// DeliverICMP submits one ICMP (src, dst IPv4) or ICMPv6 message sent from
// src to dst, for the connection whose segment it quotes. A malformed
// message is a *ParseError and changes nothing; every other message is
// explained, acted on or not.
func (e *Engine) DeliverICMP(src, dst netip.Addr, icmp []byte) error {
	m, err := ParseICMP(src, dst, icmp)
	if err != nil {
		return err
	}
	e.begin()
	tf := Field{"ICMP.TYPE", uint64(m.Type)}
	cf := Field{"ICMP.CODE", uint64(m.Code)}
	if !m.IsError {
		e.explain(0, CodeICMPNotError, ActionDropped, tf, cf)
		return nil
	}
	c := e.connFor(m.Quoted)
	if c == nil || c.lq != nil {
		e.explain(0, CodeICMPNoConnection, ActionDropped, tf, cf)
		return nil
	}
	class, cerr := m.classify()
	if class == icmpIgnored {
		e.explain(c.id, CodeICMPIgnored, ActionDropped, tf, cf)
		return nil
	}
	// RFC 5927 §4.1: act only if SND.UNA <= SEG.SEQ < SND.NXT, the quoted
	// segment is one still in flight; else the message is stale or forged.
	sf := Field{"SEG.SEQ", uint64(m.Seq)}
	if !(c.sndUna.LessEq(m.Seq) && m.Seq.LessThan(c.sndNxt)) {
		e.explain(c.id, CodeICMPOutOfWindow, ActionDropped, sf, Field{"SND.UNA", uint64(c.sndUna)}, Field{"SND.NXT", uint64(c.sndNxt)}, tf, cf)
		return nil
	}
	switch class {
	case icmpPMTU:
		e.icmpPMTU(c, &m)
		return nil
	case icmpHardBSD:
		if !e.cfg.ICMPHardBSD {
			class = icmpSoft
		}
	}
	if c.state == SynReceived && e.icmpSynReceived(c, class, cerr, tf, cf, sf) { // icmp_synrcvd.go
		return nil
	}
	if class != icmpSoft && e.cfg.ICMPNoReset {
		e.explain(c.id, CodeICMPHardNoReset, ActionAccepted, tf, cf)
		c.softErr = softErrorOf(cerr)
		return nil
	}
	if class != icmpSoft && c.state == SynSent {
		code := CodeICMPHardAbort
		if class == icmpHardBSD {
			code = CodeICMPHardAbortBSD
		}
		e.explain(c.id, code, ActionAccepted, tf, cf, sf)
		if cerr == ErrConnectionRefused {
			e.event(c, EventRefused)
		}
		e.toClosed(c, code, cerr)
		return nil
	}
	// Soft errors, and hard errors on a synchronized connection (RFC 5461
	// §4: treated as soft there), are recorded for the application and
	// never abort (MUST-56, SHLD-25).
	c.softErr = softErrorOf(cerr)
	code := CodeICMPSoftError
	if class != icmpSoft {
		code = CodeICMPHardAsSoft
	}
	e.explain(c.id, code, ActionAccepted, tf, cf, sf)
	return nil
}

// rfc1191Plateaus is RFC 1191 §7's table of common MTUs, for a
// "fragmentation needed" without a next-hop MTU (RFC 1191 §5).
var rfc1191Plateaus = [...]int{65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68}

// icmpPMTU handles fragmentation needed / Packet Too Big: the path MTU
// drops, the MSS with it (never below the floor), and the segment in
// flight is sent again at the new size at once (RFC 1191 §6.5, RFC 8201
// §5.4). It is not a congestion signal: cwnd and ssthresh stay.
func (e *Engine) icmpPMTU(c *conn, m *ICMPMessage) {
	mtu, ipHdr, floor := int(m.MTU), ipv4HeaderLen, pmtuFloor4
	if m.V6 {
		ipHdr, floor = ipv6HeaderLen, pmtuFloor6
	}
	if mtu == 0 && !m.V6 {
		for _, p := range rfc1191Plateaus {
			if p < m.QuotedLen {
				mtu = p
				break
			}
		}
	}
	mf := Field{"MTU", uint64(m.MTU)}
	if mtu < floor {
		mtu = floor
	}
	mss := uint16(max(mtu-ipHdr-MinHeaderLen, 1))
	cur := c.sndMSS
	if c.pmtuMSS != 0 {
		cur = min(cur, c.pmtuMSS)
	}
	if c.state == SynSent {
		// No data is in flight and the peer's MSS is not known yet: the
		// path MTU caps the send MSS once it is.
		if c.pmtuMSS == 0 || mss < c.pmtuMSS {
			c.pmtuMSS = mss
		}
		if e.cfg.PMTUSynMSS && m.V6 && mss < c.rcvMSS {
			c.rcvMSS = mss
			e.explain(c.id, CodePMTUSynMSS, ActionAccepted, mf, Field{"MSS", uint64(mss)})
			return
		}
		e.explain(c.id, CodePMTUSynSent, ActionAccepted, mf, Field{"MSS", uint64(mss)})
		return
	}
	if mss >= cur {
		e.explain(c.id, CodePMTUNotSmaller, ActionDropped, mf, Field{"MSS", uint64(mss)}, Field{"SND.MSS", uint64(cur)})
		return
	}
	c.pmtuMSS = mss
	e.explain(c.id, CodePMTULowered, ActionAccepted, mf, Field{"MSS", uint64(mss)}, Field{"SND.MSS", uint64(cur)}, Field{"SND.UNA", uint64(c.sndUna)})
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
		if c.sndUna.LessThan(c.sndNxt) {
			c.rtxNxt = c.sndUna
			e.retransmitOne(c)
			e.output(c)
		}
	}
}

// SoftError returns the last soft error an ICMP message reported for an
// endpoint (RFC 9293 §3.9.2.2 SHLD-25, RFC 1122 §4.2.3.9), or nil. It
// does not clear it.
func (e *Engine) SoftError(id EndpointID) error {
	c, ok := e.byID[id]
	if !ok {
		return ErrConnectionDoesNotExist
	}
	return c.softErr.err()
}

// ICMPPacket reports whether an IP packet carries an ICMP (IPv4) or ICMPv6
// (IPv6, as the first next header) message, and returns its addresses and
// the message. Deliver sends such packets to DeliverICMP.
func ICMPPacket(b []byte) (src, dst netip.Addr, icmp []byte, ok bool) {
	return icmpPayload(b)
}

// softError is an ICMP soft error kept in a byte (a conn stays small).
type softError uint8

var softErrors = [...]error{nil, ErrConnectionRefused, ErrHostUnreachable, ErrNetUnreachable}

func softErrorOf(err error) softError {
	for i, e := range softErrors {
		if e == err {
			return softError(i)
		}
	}
	return 0
}

func (s softError) err() error { return softErrors[s] }

// timeoutErr is the error of a connection given up after retransmissions:
// "connection aborted due to user timeout", naming the last ICMP soft
// error if one came (RFC 1122 §4.2.3.9: soft errors are reported; FreeBSD
// returns its t_softerror then, so SO_ERROR says EHOSTUNREACH rather than
// ETIMEDOUT). errors.Is matches both.
func (c *conn) timeoutErr() error {
	if soft := c.softErr.err(); soft != nil {
		return fmt.Errorf("%w (the last ICMP soft error: %w)", ErrTimedOut, soft)
	}
	return ErrTimedOut
}
