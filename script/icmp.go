package script

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
)

// ICMP input lines ("< icmp unreachable port_unreachable [0:0(0)]"), as
// packetdrill sends them: an ICMP or ICMPv6 error from the remote address to
// the target, quoting the IP header and the TCP header of a segment the
// target sent on the flow: sequence number seq (relative to the target's
// ISN), len bytes of data, from the target's port to the remote's.

// icmpTypes maps packetdrill's type names to ICMP (v4) and ICMPv6 types.
var icmpTypes = map[string][2]int{
	"echo_reply":        {0, 129},
	"unreachable":       {3, 1},
	"dest_unreachable":  {3, 1},
	"source_quench":     {4, -1},
	"redirect":          {5, -1},
	"echo_request":      {8, 128},
	"time_exceeded":     {11, 3},
	"parameter_problem": {12, 4},
	"packet_too_big":    {-1, 2},
}

// icmpCodes maps packetdrill's code names, per type (v4 and v6 names differ).
var icmpCodes = map[string]int{
	// ICMPv4 destination unreachable (RFC 792, RFC 1812 §5.2.7.1).
	"net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2, "port_unreachable": 3,
	"frag_needed": 4, "source_route_failed": 5, "net_unknown": 6, "host_unknown": 7,
	"source_host_isolated": 8, "net_prohibited": 9, "host_prohibited": 10,
	"net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12, "packet_filtered": 13,
	"precedence_violation": 14, "precedence_cutoff": 15,
	// ICMPv4 time exceeded.
	"ttl_exceeded_in_transit": 0, "frag_reass_exceeded": 1,
	// ICMPv6 (RFC 4443).
	"no_route": 0, "admin_prohibited": 1, "not_neighbour": 2, "beyond_scope": 2, "address_unreachable": 3,
	"source_address_failed": 5, "reject_route": 6,
	"exceeded_hop_limit": 0, "exceeded_frag_time": 1,
	"header_field": 0, "unknown_next_header": 1, "unknown_option": 2,
}

// icmpTypeCode resolves a line's type and code for the flow's family.
func icmpTypeCode(c *ICMP, v6 bool) (typ, code uint8, err error) {
	t, ok := icmpTypes[c.Type]
	fam := 0
	if v6 {
		fam = 1
	}
	if !ok || t[fam] < 0 {
		return 0, 0, fmt.Errorf("ICMP type %q is not known for %s", c.Type, map[bool]string{false: "IPv4", true: "IPv6"}[v6])
	}
	switch {
	case c.Code == "":
	case strings.HasPrefix(c.Code, "code_"):
		n, err := strconv.ParseUint(c.Code[len("code_"):], 10, 8)
		if err != nil {
			return 0, 0, fmt.Errorf("ICMP code %q: want code_N with N 0-255", c.Code)
		}
		code = uint8(n)
	default:
		n, ok := icmpCodes[c.Code]
		if !ok {
			return 0, 0, fmt.Errorf("ICMP code %q is not known", c.Code)
		}
		if c.Code == "port_unreachable" && v6 {
			n = 4
		}
		code = uint8(n)
	}
	return uint8(t[fam]), code, nil
}

// buildICMP builds the whole IP packet of an ICMP line on flow f.
func buildICMP(c *ICMP, f *flow) ([]byte, error) {
	v6 := !f.local.Addr().Is4()
	typ, code, err := icmpTypeCode(c, v6)
	if err != nil {
		return nil, err
	}
	// The quoted segment: from the target to the remote, as the target
	// sent it (no options; the ICMP rules look at ports and seq only).
	seg := fsm.Segment{Flags: fsm.FlagACK, Seq: fsm.Seq(f.iss + c.Seq), Window: 65535, Payload: make([]byte, c.Len)}
	if c.Seq == 0 && c.Len == 0 && !f.issKnown {
		seg.Flags = fsm.FlagSYN
	}
	quoted := buildPacket(f.local, f.remote, &seg, nil)
	// RFC 792: the IP header and 64 bits of data; RFC 4443 §2.4: as much
	// as fits in 1280. Both stacks take the TCP header; quote it whole.
	qlen := 20 + 20
	if v6 {
		qlen = 40 + 20
	}
	quoted = quoted[:min(len(quoted), qlen)]
	msg := make([]byte, 8, 8+len(quoted))
	msg[0], msg[1] = typ, code
	if c.MTU != nil {
		if v6 {
			binary.BigEndian.PutUint32(msg[4:], *c.MTU)
		} else {
			binary.BigEndian.PutUint16(msg[6:], uint16(*c.MTU))
		}
	}
	msg = append(msg, quoted...)
	src, dst := f.remote.Addr(), f.local.Addr()
	var sum uint32
	if v6 {
		sum = fsm.PseudoHeaderSumProto(src, dst, len(msg), 58)
	}
	binary.BigEndian.PutUint16(msg[2:], fsm.FoldChecksum(fsm.Checksum(msg, sum)))
	var ip []byte
	if !v6 {
		ip = make([]byte, 20, 20+len(msg))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(msg)))
		ip[8], ip[9] = 64, 1
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], fsm.FoldChecksum(fsm.Checksum(ip, 0)))
	} else {
		ip = make([]byte, 40, 40+len(msg))
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(msg)))
		ip[6], ip[7] = 58, 64
		s16, d16 := src.As16(), dst.As16()
		copy(ip[8:], s16[:])
		copy(ip[24:], d16[:])
	}
	return append(ip, msg...), nil
}

// inboundICMP sends an ICMP line's packet to the target.
func (r *runner) inboundICMP(ev *Event) {
	f := r.flow(ev.Packet.Flow)
	pkt, err := buildICMP(ev.Packet.ICMP, f)
	if err != nil {
		r.failf("%v", err)
		return
	}
	r.cur.Actual = "sent " + ev.Packet.ICMP.String()
	mark := len(r.cur.Engine)
	if err := r.t.Inject(pkt); err != nil {
		r.failf("the target refused the ICMP packet: %v", err)
		return
	}
	r.drain()
	r.lastIn, r.lastInExpl = ev.Pos.Line, append([]string(nil), r.cur.Engine[mark:]...)
}
