package bench

import (
	"bytes"
	"fmt"
	"net/netip"

	"github.com/tcpstated/tcpstated/fsm"
)

// Addresses of the load: a peer opens connection after connection to one
// listener.
var (
	listenAddr = netip.MustParseAddrPort("10.0.0.1:80")
	peerAddr   = netip.MustParseAddr("10.0.0.2")
)

const (
	fixedISN    = 1000 // the session's ISN: the peer knows the server's numbers
	peerISN     = 100
	payloadSize = 64
	// dataPerConn bounds the data segments of one connection, well inside
	// the 64 KiB receive window nobody reads from.
	dataPerConn = 500
)

// seg is one segment the peer sends, before encoding.
type seg struct {
	src   netip.AddrPort
	seq   uint32
	ack   uint32
	flags fsm.Flags
	data  []byte
}

// peer writes the segments of a client that connects, sends dataPerConn
// segments, resets the connection and connects again from the next port.
type peer struct {
	port    uint16
	step    int // 0 SYN, 1 ACK, 2..dataPerConn+1 data, then RST
	seq     uint32
	payload []byte
}

func newPeer(id int) *peer {
	p := &peer{port: uint16(1024 + (id*7919)%30000), payload: bytes.Repeat([]byte{'x'}, payloadSize)}
	copy(p.payload, fmt.Sprintf("peer %d ", id))
	return p
}

func (p *peer) next() seg {
	src := netip.AddrPortFrom(peerAddr, p.port)
	var s seg
	switch {
	case p.step == 0:
		p.seq = peerISN
		s = seg{src: src, seq: p.seq, flags: fsm.FlagSYN}
		p.seq++
	case p.step == 1:
		s = seg{src: src, seq: p.seq, ack: fixedISN + 1, flags: fsm.FlagACK}
	case p.step < dataPerConn+2:
		s = seg{src: src, seq: p.seq, ack: fixedISN + 1, flags: fsm.FlagACK | fsm.FlagPSH, data: p.payload}
		p.seq += payloadSize
	default:
		s = seg{src: src, seq: p.seq, flags: fsm.FlagRST}
		p.step = -1
		p.port++
		if p.port < 1024 {
			p.port = 1024
		}
	}
	p.step++
	return s
}

// packet encodes s as an IPv4 packet with a correct checksum.
func (s seg) packet(buf []byte) []byte {
	return fsm.AppendPacket(buf[:0], s.src.Addr(), listenAddr.Addr(), &fsm.Segment{
		SrcPort: s.src.Port(), DstPort: listenAddr.Port(), Seq: fsm.Seq(s.seq), Ack: fsm.Seq(s.ack),
		Flags: s.flags, Window: 65535, Payload: s.data,
	})
}

// json encodes s as a SubmitSegment REST body with structured fields.
func (s seg) json(buf []byte) []byte {
	buf = fmt.Appendf(buf[:0], `{"fields":{"sourceAddress":"%s","destinationAddress":"%s","seq":%d,"ack":%d,"flags":[`,
		s.src, listenAddr, s.seq, s.ack)
	first := true
	for _, f := range []struct {
		bit  fsm.Flags
		name string
	}{{fsm.FlagSYN, "SYN"}, {fsm.FlagRST, "RST"}, {fsm.FlagPSH, "PSH"}, {fsm.FlagACK, "ACK"}} {
		if s.flags&f.bit != 0 {
			if !first {
				buf = append(buf, ',')
			}
			buf = append(buf, '"')
			buf = append(buf, f.name...)
			buf = append(buf, '"')
			first = false
		}
	}
	buf = append(buf, `],"window":65535`...)
	if len(s.data) > 0 {
		buf = fmt.Appendf(buf, `,"payloadText":%q`, s.data)
	}
	return append(buf, "}}"...)
}
