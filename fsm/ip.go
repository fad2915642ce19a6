package fsm

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// Header sizes and defaults for the IP layer under TCP. Inputs may arrive as
// whole IP packets (what a TUN device or a pcap holds), so the engine reads
// and writes just enough IPv4 (RFC 791) and IPv6 (RFC 8200) to carry TCP.
const (
	ipv4HeaderLen = 20 // without options
	ipv6HeaderLen = 40 // fixed header
	ipHopLimit    = 64 // TTL / hop limit we send (the IANA-recommended default, as on Linux)

	ipv4FlagDF      = 0x4000 // Don't Fragment, in the flags/fragment-offset word
	ipv4FlagMF      = 0x2000 // More Fragments
	ipv4FragOffMask = 0x1fff

	// IPv6 next-header values (RFC 8200 §4).
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
)

// unicast reports whether a can be a TCP endpoint: not multicast, not the
// IPv4 limited broadcast 255.255.255.255 (RFC 1122 §3.2.1.3, §4.2.3.10).
// A subnet's directed broadcast needs the interface's prefix, which only
// the host knows, so the host filters those.
func unicast(a netip.Addr) bool {
	if a.Is4() { // every segment checks two: not netip's general path
		return a.As4()[0]&0xf0 != 0xe0 && a != limitedBroadcast
	}
	return !a.IsMulticast() && a.Unmap() != limitedBroadcast
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// setIPFields rewrites the TTL (hop limit) and the TOS (traffic class) of
// a packet AppendPacket built, keeping the IPv4 header checksum right.
// Neither is in the TCP pseudo-header, so the TCP checksum stands.
func setIPFields(pkt []byte, hop, tclass uint8) {
	if pkt[0]>>4 == 4 {
		pkt[1], pkt[8] = tclass, hop
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], FoldChecksum(Checksum(pkt[:ipv4HeaderLen], 0)))
		return
	}
	pkt[0] = 0x60 | tclass>>4
	pkt[1] = tclass<<4 | pkt[1]&0x0f
	pkt[7] = hop
}

// ParsePacket decodes an IPv4 or IPv6 packet carrying TCP and returns the
// addresses and the TCP bytes (aliasing b, capacity capped at the end of
// the IP payload). IPv4 addresses are returned as Is4, never as
// IPv4-mapped IPv6. Bytes past the IP length (link padding) are ignored.
// The TCP bytes themselves are not checked; see ParseSegment.
func ParsePacket(b []byte) (src, dst netip.Addr, tcp []byte, err error) {
	if len(b) == 0 {
		return src, dst, nil, &ParseError{Layer: "ip", Field: "version", Reason: "empty packet"}
	}
	switch v := b[0] >> 4; v {
	case 4:
		return parseIPv4(b)
	case 6:
		return parseIPv6(b)
	default:
		return src, dst, nil, &ParseError{Layer: "ip", Field: "version", Reason: fmt.Sprintf(
			"version %d is neither 4 nor 6", v)}
	}
}

// parseIPv4 checks the RFC 791 §3.1 header: length fields, header checksum,
// no fragmentation, protocol TCP. Options inside the IHL are skipped.
func parseIPv4(b []byte) (src, dst netip.Addr, tcp []byte, err error) {
	if len(b) < ipv4HeaderLen {
		return src, dst, nil, &ParseError{Layer: "ipv4", Field: "header length", Reason: fmt.Sprintf(
			"packet is %d bytes, shorter than the %d-byte minimum header", len(b), ipv4HeaderLen)}
	}
	ihl := int(b[0] & 0x0f)
	if ihl < 5 || 4*ihl > len(b) {
		return src, dst, nil, &ParseError{Layer: "ipv4", Field: "ihl", Reason: fmt.Sprintf(
			"%d words (%d bytes) is not between 5 words (20 bytes) and the %d-byte packet", ihl, 4*ihl, len(b))}
	}
	hl := 4 * ihl
	total := int(binary.BigEndian.Uint16(b[2:]))
	if total < hl || total > len(b) {
		return src, dst, nil, &ParseError{Layer: "ipv4", Field: "total length", Reason: fmt.Sprintf(
			"says %d bytes but the packet has %d (header %d bytes)", total, len(b), hl)}
	}
	if sum := Checksum(b[:hl], 0); FoldChecksum(sum) != 0 {
		stored := binary.BigEndian.Uint16(b[10:])
		want := FoldChecksum(Checksum(b[12:hl], Checksum(b[:10], 0)))
		return src, dst, nil, &ParseError{Layer: "ipv4", Field: "header checksum", Reason: fmt.Sprintf(
			"is 0x%04x, want 0x%04x", stored, want)}
	}
	if frag := binary.BigEndian.Uint16(b[6:]); frag&(ipv4FlagMF|ipv4FragOffMask) != 0 {
		return src, dst, nil, &ParseError{Layer: "ipv4", Field: "fragment", Reason: fmt.Sprintf(
			"fragments are not supported (MF %t, offset %d bytes)", frag&ipv4FlagMF != 0, 8*int(frag&ipv4FragOffMask))}
	}
	if p := b[9]; p != protoTCP {
		return src, dst, nil, &ParseError{Layer: "ipv4", Field: "protocol", Reason: fmt.Sprintf(
			"protocol %d is not TCP (6)", p)}
	}
	src = netip.AddrFrom4([4]byte(b[12:16]))
	dst = netip.AddrFrom4([4]byte(b[16:20]))
	return src, dst, b[hl:total:total], nil
}

// parseIPv6 checks the RFC 8200 §3 header and walks the extension headers
// (§4) that may precede TCP: hop-by-hop, routing and destination options
// are skipped by their length; a fragment header is refused.
func parseIPv6(b []byte) (src, dst netip.Addr, tcp []byte, err error) {
	if len(b) < ipv6HeaderLen {
		return src, dst, nil, &ParseError{Layer: "ipv6", Field: "header length", Reason: fmt.Sprintf(
			"packet is %d bytes, shorter than the %d-byte fixed header", len(b), ipv6HeaderLen)}
	}
	pl := int(binary.BigEndian.Uint16(b[4:]))
	if pl > len(b)-ipv6HeaderLen {
		return src, dst, nil, &ParseError{Layer: "ipv6", Field: "payload length", Reason: fmt.Sprintf(
			"says %d bytes but the packet has %d after the %d-byte header", pl, len(b)-ipv6HeaderLen, ipv6HeaderLen)}
	}
	end := ipv6HeaderLen + pl
	next, off := b[6], ipv6HeaderLen
	for next != protoTCP {
		switch next {
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
			// Next Header, Hdr Ext Len in 8-octet units not counting the
			// first 8 (RFC 8200 §4.3, §4.4, §4.6).
			if off+2 > end {
				return src, dst, nil, &ParseError{Layer: "ipv6", Field: "extension header", Reason: fmt.Sprintf(
					"header %d at offset %d runs past the %d-byte packet", next, off, end)}
			}
			n := 8 * (int(b[off+1]) + 1)
			if off+n > end {
				return src, dst, nil, &ParseError{Layer: "ipv6", Field: "extension header", Reason: fmt.Sprintf(
					"header %d at offset %d is %d bytes, running past the %d-byte packet", next, off, n, end)}
			}
			next, off = b[off], off+n
		case ipv6Fragment:
			return src, dst, nil, &ParseError{Layer: "ipv6", Field: "fragment", Reason: fmt.Sprintf(
				"fragment header at offset %d: fragments are not supported", off)}
		default:
			return src, dst, nil, &ParseError{Layer: "ipv6", Field: "next header", Reason: fmt.Sprintf(
				"next header %d at offset %d is not TCP (6)", next, off)}
		}
	}
	src = netip.AddrFrom16([16]byte(b[8:24]))
	dst = netip.AddrFrom16([16]byte(b[24:40]))
	return src, dst, b[off:end:end], nil
}

// sendsIPv4 reports whether a packet from src is sent as IPv4: src must be a
// plain IPv4 address (Is4). An IPv4-mapped IPv6 address is sent as IPv6,
// which is what ParsePacket returns for such a packet.
func sendsIPv4(src netip.Addr) bool { return src.Is4() }

// PacketLen returns len(AppendPacket(nil, src, dst, s)) without encoding.
func PacketLen(src netip.Addr, s *Segment) int {
	if sendsIPv4(src) {
		return ipv4HeaderLen + s.HeaderLen() + len(s.Payload)
	}
	return ipv6HeaderLen + s.HeaderLen() + len(s.Payload)
}

// AppendPacket appends an IPv4 (when src.Is4) or IPv6 packet carrying
// segment s: TTL/hop limit 64, IPv4 DF set and ID 0 (RFC 6864 §4.1 allows
// any ID on atomic datagrams), traffic class and flow label 0, correct
// IPv4 header checksum and TCP checksum. It does not allocate when dst has
// the capacity.
//
// Mixing families is a caller bug but never panics: an IPv4 packet to a
// non-IPv4 dstAddr goes to dstAddr.Unmap() if that is IPv4, else to 0.0.0.0;
// an IPv6 packet to an IPv4 dstAddr uses its IPv4-mapped form. The caller
// keeps the segment within 65535 bytes of IP payload (the MSS does).
func AppendPacket(dst []byte, src, dstAddr netip.Addr, s *Segment) []byte {
	tcpLen := s.HeaderLen() + len(s.Payload)
	dst = slices.Grow(dst, PacketLen(src, s))
	if sendsIPv4(src) {
		d := dstAddr.Unmap()
		if !d.Is4() {
			d = netip.IPv4Unspecified()
		}
		start := len(dst)
		dst = append(dst, 0x45, 0) // version 4, IHL 5; DSCP/ECN 0
		dst = binary.BigEndian.AppendUint16(dst, uint16(ipv4HeaderLen+tcpLen))
		dst = append(dst, 0, 0) // identification
		dst = binary.BigEndian.AppendUint16(dst, ipv4FlagDF)
		dst = append(dst, ipHopLimit, protoTCP, 0, 0) // checksum filled in below
		s4, d4 := src.As4(), d.As4()
		dst = append(dst, s4[:]...)
		dst = append(dst, d4[:]...)
		hdr := dst[start:]
		binary.BigEndian.PutUint16(hdr[10:], FoldChecksum(Checksum(hdr, 0)))
		return AppendSegment(dst, s, src, d)
	}
	s16, d16 := src.As16(), dstAddr.As16()
	dst = append(dst, 0x60, 0, 0, 0) // version 6, traffic class 0, flow label 0
	dst = binary.BigEndian.AppendUint16(dst, uint16(tcpLen))
	dst = append(dst, protoTCP, ipHopLimit)
	dst = append(dst, s16[:]...)
	dst = append(dst, d16[:]...)
	return AppendSegment(dst, s, netip.AddrFrom16(s16), netip.AddrFrom16(d16))
}
