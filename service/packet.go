package service

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"

	"github.com/tcpstated/tcpstated/service/machine"
)

// A submitted segment is always logged and delivered as a whole IP packet
// (SegmentInput.ip_packet): raw TCP bytes get an IP header, structured
// fields are encoded by fsm.AppendPacket.

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	maxIPPacket   = 65535
)

// submittedPacket validates a SubmitSegment request and returns the IP
// packet to deliver. Malformed input is INVALID_ARGUMENT naming the field;
// a wrong checksum is not an error (the engine drops the segment).
func submittedPacket(req *pb.SubmitSegmentRequest) ([]byte, error) {
	switch s := req.GetSegment().(type) {
	case *pb.SubmitSegmentRequest_IpPacket:
		if err := checkPacket(s.IpPacket); err != nil {
			return nil, invalidf("ip_packet: %v", err)
		}
		return s.IpPacket, nil
	case *pb.SubmitSegmentRequest_Tcp:
		return rawTCPPacket(s.Tcp)
	case *pb.SubmitSegmentRequest_Fields:
		return fieldsPacket(s.Fields)
	}
	return nil, invalidf("segment: one of ip_packet, tcp or fields is required")
}

// checkPacket parses an IP packet and its TCP segment, returning the
// *fsm.ParseError that names the layer and header field of the first
// problem (the caller prefixes the request field).
func checkPacket(pkt []byte) error {
	if src, dst, icmp, ok := fsm.ICMPPacket(pkt); ok {
		// An ICMP error quoting one of our segments (RFC 9293 §3.9.2.2):
		// the engine acts on it; logged and exported as the ICMP packet.
		_, err := fsm.ParseICMP(src, dst, icmp)
		return err
	}
	_, _, tcp, err := fsm.ParsePacket(pkt)
	if err != nil {
		return err
	}
	_, err = fsm.ParseSegment(tcp)
	return err
}

// rawTCPPacket wraps raw TCP bytes in an IPv4 or IPv6 header, leaving the
// TCP bytes (checksum included) exactly as given.
func rawTCPPacket(r *pb.RawTcpSegment) ([]byte, error) {
	src, err := netip.ParseAddr(r.GetSourceIp())
	if err != nil {
		return nil, invalidf("tcp.source_ip: %q is not an IP address", r.GetSourceIp())
	}
	dst, err := netip.ParseAddr(r.GetDestinationIp())
	if err != nil {
		return nil, invalidf("tcp.destination_ip: %q is not an IP address", r.GetDestinationIp())
	}
	if src.Zone() != "" || dst.Zone() != "" {
		return nil, invalidf("tcp: addresses with a zone are not supported")
	}
	if src.Is4() != dst.Is4() {
		return nil, invalidf("tcp.destination_ip: %q is not of the same address family as the source %q", r.GetDestinationIp(), r.GetSourceIp())
	}
	seg := r.GetSegment()
	if _, err := fsm.ParseSegment(seg); err != nil {
		return nil, invalidf("tcp.segment: %v", err)
	}
	hl := ipv6HeaderLen
	if src.Is4() {
		hl = ipv4HeaderLen
	}
	if hl+len(seg) > maxIPPacket {
		return nil, invalidf("tcp.segment: %d bytes do not fit an IP packet", len(seg))
	}
	return wrapTCP(src, dst, seg), nil
}

// wrapTCP prepends an IP header (TTL 64, IPv4 DF, as fsm.AppendPacket
// writes) to a TCP segment.
func wrapTCP(src, dst netip.Addr, tcp []byte) []byte {
	if src.Is4() {
		b := make([]byte, ipv4HeaderLen, ipv4HeaderLen+len(tcp))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(ipv4HeaderLen+len(tcp)))
		binary.BigEndian.PutUint16(b[6:], 0x4000) // DF
		b[8], b[9] = 64, 6
		s4, d4 := src.As4(), dst.As4()
		copy(b[12:], s4[:])
		copy(b[16:], d4[:])
		binary.BigEndian.PutUint16(b[10:], fsm.FoldChecksum(fsm.Checksum(b, 0)))
		return append(b, tcp...)
	}
	b := make([]byte, ipv6HeaderLen, ipv6HeaderLen+len(tcp))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(tcp)))
	b[6], b[7] = 6, 64
	s16, d16 := src.As16(), dst.As16()
	copy(b[8:], s16[:])
	copy(b[24:], d16[:])
	return append(b, tcp...)
}

var flagBits = map[string]fsm.Flags{
	"FIN": fsm.FlagFIN, "SYN": fsm.FlagSYN, "RST": fsm.FlagRST, "PSH": fsm.FlagPSH,
	"ACK": fsm.FlagACK, "URG": fsm.FlagURG, "ECE": fsm.FlagECE, "CWR": fsm.FlagCWR,
}

// fieldsPacket encodes a segment given field by field, with a correct
// checksum unless the request overrides it.
func fieldsPacket(f *pb.SegmentFields) ([]byte, error) {
	src, err := machine.ParseAddrPort("fields.source_address", f.GetSourceAddress())
	if err != nil {
		return nil, err
	}
	dst, err := machine.ParseAddrPort("fields.destination_address", f.GetDestinationAddress())
	if err != nil {
		return nil, err
	}
	if src.Addr().Is4() != dst.Addr().Is4() {
		return nil, invalidf("fields.destination_address: %q is not of the same address family as the source %q", f.GetDestinationAddress(), f.GetSourceAddress())
	}
	if src.Addr().Zone() != "" || dst.Addr().Zone() != "" {
		return nil, invalidf("fields: addresses with a zone are not supported")
	}
	seg := fsm.Segment{
		SrcPort: src.Port(),
		DstPort: dst.Port(),
		Seq:     fsm.Seq(f.GetSeq()),
	}
	for i, name := range f.GetFlags() {
		bit, ok := flagBits[strings.ToUpper(name)]
		if !ok {
			return nil, invalidf("fields.flags[%d]: %q is not one of FIN, SYN, RST, PSH, ACK, URG, ECE, CWR", i, name)
		}
		seg.Flags |= bit
	}
	if seg.Flags&fsm.FlagACK != 0 {
		seg.Ack = fsm.Seq(f.GetAck())
	}
	if f.GetWindow() > 65535 {
		return nil, invalidf("fields.window: %d does not fit the 16-bit window field (before scaling)", f.GetWindow())
	}
	seg.Window = uint16(f.GetWindow())
	if f.GetUrgent() > 65535 {
		return nil, invalidf("fields.urgent: %d does not fit the 16-bit urgent pointer", f.GetUrgent())
	}
	seg.Urgent = uint16(f.GetUrgent())
	if err := segmentOptions(f.GetOptions(), &seg.Options); err != nil {
		return nil, err
	}
	switch d := f.GetData().(type) {
	case *pb.SegmentFields_Payload:
		seg.Payload = d.Payload
	case *pb.SegmentFields_PayloadText:
		seg.Payload = []byte(d.PayloadText)
	}
	if n := fsm.PacketLen(src.Addr(), &seg); n > maxIPPacket {
		return nil, invalidf("fields.payload: the packet would be %d bytes, more than an IP packet holds (%d)", n, maxIPPacket)
	}
	pkt := fsm.AppendPacket(nil, src.Addr(), dst.Addr(), &seg)
	_, _, tcp, err := fsm.ParsePacket(pkt)
	if err != nil {
		return nil, errors.Join(errorf(kindInternal, "encoding the segment"), err)
	}
	if got, _ := fsm.ParseSegment(tcp); got.Options.NumSACK != seg.Options.NumSACK {
		return nil, invalidf("fields.options.sack_blocks: only %d of the %d blocks fit in the 40 bytes of option space with the other options", got.Options.NumSACK, seg.Options.NumSACK)
	}
	if f.Checksum != nil {
		if *f.Checksum > 65535 {
			return nil, invalidf("fields.checksum: %d does not fit the 16-bit checksum field", *f.Checksum)
		}
		binary.BigEndian.PutUint16(tcp[16:], uint16(*f.Checksum))
	}
	if f.IpEcn != nil {
		if *f.IpEcn > 3 {
			return nil, invalidf("fields.ip_ecn: %d is not an ECN codepoint (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE)", *f.IpEcn)
		}
		fsm.SetIPECN(pkt, uint8(*f.IpEcn)) // RFC 3168 §5
	}
	return pkt, nil
}

func segmentOptions(o *pb.SegmentOptions, out *fsm.Options) error {
	if o == nil {
		return nil
	}
	if o.Mss != nil {
		if *o.Mss > 65535 {
			return invalidf("fields.options.mss: %d does not fit the 16-bit MSS option", *o.Mss)
		}
		out.MSS, out.HasMSS = uint16(*o.Mss), true
	}
	if o.WindowScale != nil {
		if *o.WindowScale > 255 {
			return invalidf("fields.options.window_scale: %d does not fit the one-byte shift count", *o.WindowScale)
		}
		out.WScale, out.HasWScale = uint8(*o.WindowScale), true
	}
	out.SACKPermitted = o.SackPermitted
	if ts := o.Timestamp; ts != nil {
		out.HasTimestamp, out.TSVal, out.TSEcr = true, ts.Val, ts.Ecr
	}
	if len(o.SackBlocks) > fsm.MaxSACKBlocks {
		return invalidf("fields.options.sack_blocks: %d blocks, at most %d fit", len(o.SackBlocks), fsm.MaxSACKBlocks)
	}
	for i, b := range o.SackBlocks {
		out.SACK[i] = fsm.SACKBlock{Start: fsm.Seq(b.GetStart()), End: fsm.Seq(b.GetEnd())}
	}
	out.NumSACK = uint8(len(o.SackBlocks))
	return nil
}
