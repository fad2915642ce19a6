package script

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tcpstated/tcpstated/fsm"
)

// outPkt is a packet the engine emitted, copied out of its Ready batch.
type outPkt struct {
	t    time.Duration // engine time
	data []byte
	seg  fsm.Segment
	opts []TCPOpt // the option bytes in order, values absolute
	flow *flow
}

// flagsOf converts packetdrill flag letters ("S.", "FP.", "-") to flags.
func flagsOf(s string) fsm.Flags {
	var f fsm.Flags
	for _, c := range s {
		if i := strings.IndexRune(flagLetters, c); i >= 0 {
			f |= 1 << i
		}
	}
	return f
}

// flagText renders flags as packetdrill letters in wire order, "-" for none.
func flagText(f fsm.Flags) string {
	if f == 0 {
		return "-"
	}
	var b []byte
	for i := range flagLetters {
		if f&(1<<i) != 0 {
			b = append(b, flagLetters[i])
		}
	}
	return string(b)
}

// encodeOptions writes the option list exactly as written (nop and eol
// where the script puts them), padding with EOL to a multiple of 4 bytes.
// SACK blocks are made absolute with sackBase; a TS ecr through ecr().
func encodeOptions(opts []TCPOpt, sackBase uint32, ecr func(uint32) uint32) ([]byte, error) {
	var b []byte
	for _, o := range opts {
		switch o.Kind {
		case OptNOP:
			b = append(b, 1)
		case OptEOL:
			b = append(b, 0)
		case OptMSS:
			b = binary.BigEndian.AppendUint16(append(b, 2, 4), uint16(o.Val))
		case OptWScale:
			b = append(b, 3, 3, byte(o.Val))
		case OptSACKOK:
			b = append(b, 4, 2)
		case OptSACK:
			b = append(b, 5, byte(2+8*len(o.Blocks)))
			for _, blk := range o.Blocks {
				b = binary.BigEndian.AppendUint32(b, blk[0]+sackBase)
				b = binary.BigEndian.AppendUint32(b, blk[1]+sackBase)
			}
		case OptTS:
			b = append(b, 8, 10)
			b = binary.BigEndian.AppendUint32(b, o.Val)
			b = binary.BigEndian.AppendUint32(b, ecr(o.Ecr))
		default:
			if isMD5Opt(o) {
				b = append(append(b, 19, 18), make([]byte, 16)...) // signed by signInbound (md5.go)
				continue
			}
			nb, ok, err := encodeFastOpen(b, o.Text)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("option %q cannot be sent: tcpstated encodes nop, eol, mss, wscale, sackOK, sack, TS, md5 and FO/FOEXP only", o.Text)
			}
			b = nb
		}
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	if len(b) > 40 {
		return nil, fmt.Errorf("the options take %d bytes; at most 40 fit in a TCP header", len(b))
	}
	return b, nil
}

// decodeOptions lists the options of a TCP header in wire order.
func decodeOptions(tcp []byte) []TCPOpt {
	if len(tcp) < 20 {
		return nil
	}
	hl := int(tcp[12]>>4) * 4
	if hl > len(tcp) || hl < 20 {
		return nil
	}
	b := tcp[20:hl]
	var out []TCPOpt
	for i := 0; i < len(b); {
		switch b[i] {
		case 0:
			out = append(out, TCPOpt{Kind: OptEOL})
			i++
			continue
		case 1:
			out = append(out, TCPOpt{Kind: OptNOP})
			i++
			continue
		}
		if i+1 >= len(b) || b[i+1] < 2 || i+int(b[i+1]) > len(b) {
			return append(out, TCPOpt{Kind: OptOther, Text: fmt.Sprintf("malformed option kind %d", b[i])})
		}
		n := int(b[i+1])
		body := b[i+2 : i+n]
		switch {
		case b[i] == 2 && n == 4:
			out = append(out, TCPOpt{Kind: OptMSS, Val: uint32(binary.BigEndian.Uint16(body))})
		case b[i] == 3 && n == 3:
			out = append(out, TCPOpt{Kind: OptWScale, Val: uint32(body[0])})
		case b[i] == 4 && n == 2:
			out = append(out, TCPOpt{Kind: OptSACKOK})
		case b[i] == 5 && (n-2)%8 == 0:
			o := TCPOpt{Kind: OptSACK}
			for k := 0; k+8 <= len(body); k += 8 {
				o.Blocks = append(o.Blocks, [2]uint32{binary.BigEndian.Uint32(body[k:]), binary.BigEndian.Uint32(body[k+4:])})
			}
			out = append(out, o)
		case b[i] == 19 && n == 18:
			out = append(out, TCPOpt{Kind: OptOther, Text: "md5"}) // RFC 2385; checkMD5 judges it
		case b[i] == 8 && n == 10:
			out = append(out, TCPOpt{Kind: OptTS, Val: binary.BigEndian.Uint32(body), Ecr: binary.BigEndian.Uint32(body[4:])})
		default:
			text, ok := decodeFastOpen(b[i], body)
			if !ok {
				text = fmt.Sprintf("kind %d len %d", b[i], n)
			}
			out = append(out, TCPOpt{Kind: OptOther, Text: text})
		}
		i += n
	}
	return out
}

// buildPacket encodes an IPv4 or IPv6 packet carrying a TCP segment whose
// options are given as bytes (so that the script's layout is kept).
func buildPacket(src, dst netip.AddrPort, seg *fsm.Segment, opts []byte) []byte {
	tcpLen := 20 + len(opts) + len(seg.Payload)
	tcp := make([]byte, 0, tcpLen)
	tcp = binary.BigEndian.AppendUint16(tcp, src.Port())
	tcp = binary.BigEndian.AppendUint16(tcp, dst.Port())
	tcp = binary.BigEndian.AppendUint32(tcp, uint32(seg.Seq))
	tcp = binary.BigEndian.AppendUint32(tcp, uint32(seg.Ack))
	tcp = append(tcp, byte((20+len(opts))/4)<<4, byte(seg.Flags))
	tcp = binary.BigEndian.AppendUint16(tcp, seg.Window)
	tcp = append(tcp, 0, 0)
	tcp = binary.BigEndian.AppendUint16(tcp, seg.Urgent)
	tcp = append(tcp, opts...)
	tcp = append(tcp, seg.Payload...)
	sum := fsm.Checksum(tcp, fsm.PseudoHeaderSum(src.Addr(), dst.Addr(), len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], fsm.FoldChecksum(sum))
	var ip []byte
	if src.Addr().Is4() {
		ip = make([]byte, 20, 20+len(tcp))
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8], ip[9] = 64, 6
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], fsm.FoldChecksum(fsm.Checksum(ip, 0)))
	} else {
		ip = make([]byte, 40, 40+len(tcp))
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(tcp)))
		ip[6], ip[7] = 6, 64
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		copy(ip[8:], s16[:])
		copy(ip[24:], d16[:])
	}
	return append(ip, tcp...)
}

// relOpts renders options with SACK blocks relative to base.
func relOpts(opts []TCPOpt, base uint32) []TCPOpt {
	out := make([]TCPOpt, len(opts))
	for i, o := range opts {
		out[i] = o
		if o.Kind == OptSACK {
			out[i].Blocks = make([][2]uint32, len(o.Blocks))
			for k, blk := range o.Blocks {
				out[i].Blocks[k] = [2]uint32{blk[0] - base, blk[1] - base}
			}
		}
	}
	return out
}

// render shows an emitted packet in script syntax with the flow's relative
// numbers: seq relative to the engine's ISN, ack and SACK blocks to the
// remote ISN.
func (o *outPkt) render() string {
	var iss, rISN uint32
	if o.flow != nil {
		iss, rISN = o.flow.iss, o.flow.remoteISN
	}
	s := &o.seg
	seq := uint32(s.Seq) - iss
	n := uint32(len(s.Payload))
	var b strings.Builder
	b.WriteString(flagText(s.Flags))
	b.WriteString(" " + u32(seq) + ":" + u32(seq+n) + "(" + u32(n) + ")")
	if s.Flags&fsm.FlagACK != 0 {
		b.WriteString(" ack " + u32(uint32(s.Ack)-rISN))
	}
	b.WriteString(" win " + strconv.Itoa(int(s.Window)))
	if s.Flags&fsm.FlagURG != 0 {
		b.WriteString(" urg " + strconv.Itoa(int(s.Urgent)))
	}
	if len(o.opts) > 0 {
		b.WriteString(" <" + optsString(relOpts(o.opts, rISN)) + ">")
	}
	if o.flow != nil && o.flow.n != 1 {
		return "[flow " + strconv.Itoa(o.flow.n) + "] " + b.String()
	}
	return b.String()
}

// semanticFlags are the flags semantic comparison judges.
const semanticFlags = fsm.FlagSYN | fsm.FlagACK | fsm.FlagFIN | fsm.FlagRST

// comparePacket checks an emitted packet against a > line. It returns the
// mismatches that fail the line, and the differences that are reported
// but not judged in this mode.
func comparePacket(p *Packet, o *outPkt, f *flow, strict bool) (fails, notes []string) {
	judge := func(ok bool, judged bool, msg string) {
		switch {
		case ok:
		case judged:
			fails = append(fails, msg)
		default:
			notes = append(notes, "not judged: "+msg)
		}
	}
	if o.flow != f {
		where := "a packet to an unknown peer"
		if o.flow != nil {
			where = o.flow.String()
		}
		fails = append(fails, fmt.Sprintf("flow: expected %s, got %s", f, where))
		return fails, notes
	}
	s := &o.seg
	want := flagsOf(p.Flags)
	if want != s.Flags {
		semOK := want&semanticFlags == s.Flags&semanticFlags
		judge(false, strict || !semOK, fmt.Sprintf("flags: expected %s, got %s", flagText(want), flagText(s.Flags)))
	}
	iss, rISN := f.iss, f.remoteISN
	if p.SeqAbs { // "N:N(N)!": the numbers are the wire's own
		iss, rISN = 0, 0
	}
	if !p.SeqAny { // "...(len)": any sequence number
		seq := uint32(s.Seq) - iss
		judge(seq == p.Seq, true, fmt.Sprintf("seq: expected %d, got %d", p.Seq, seq))
	}
	n := uint32(len(s.Payload))
	judge(n == p.Len, true, fmt.Sprintf("payload length: expected %d, got %d", p.Len, n))
	if p.Ack != nil && want&fsm.FlagACK != 0 && s.Flags&fsm.FlagACK != 0 {
		ack := uint32(s.Ack) - rISN
		judge(ack == *p.Ack, true, fmt.Sprintf("ack: expected %d, got %d", *p.Ack, ack))
	}
	if p.Win != nil {
		judge(uint32(s.Window) == *p.Win, strict, fmt.Sprintf("win: expected %d, got %d", *p.Win, s.Window))
	}
	if p.Urg != nil {
		judge(uint32(s.Urgent) == *p.Urg, strict, fmt.Sprintf("urg: expected %d, got %d", *p.Urg, s.Urgent))
	}
	switch {
	case p.AnyOp:
	case !p.HasOp:
		judge(len(o.opts) == 0, strict, fmt.Sprintf("options: expected none, got <%s>", optsString(relOpts(o.opts, f.remoteISN))))
	default:
		if msg := compareOptions(p.Opts, relOpts(o.opts, f.remoteISN)); msg != "" {
			judge(false, strict, "options: "+msg)
		}
	}
	if p.ECN != "" {
		notes = append(notes, "not judged: ECN marking ["+p.ECN+"] (tcpstated does not do ECN)")
	}
	if p.TOS != nil || p.TTL != nil {
		notes = append(notes, "not judged: the IP header fields (tos, ttl): the engine emits TCP segments, the IP header is the target's")
	}
	return fails, notes
}

// compareOptions compares option lists in order; TS val is not compared
// (packetdrill does not without --tcp_ts_tick_usecs), TS ecr is.
func compareOptions(want, got []TCPOpt) string {
	mismatch := func() string {
		return fmt.Sprintf("expected <%s>, got <%s>", optsString(want), optsString(got))
	}
	if len(want) != len(got) {
		return mismatch()
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Kind != g.Kind {
			return mismatch()
		}
		switch w.Kind {
		case OptMSS, OptWScale:
			if w.Val != g.Val {
				return mismatch()
			}
		case OptTS:
			if w.Ecr != g.Ecr {
				return fmt.Sprintf("TS ecr: expected %d, got %d (%s)", w.Ecr, g.Ecr, mismatch())
			}
		case OptSACK:
			if fmt.Sprint(w.Blocks) != fmt.Sprint(g.Blocks) {
				return mismatch()
			}
		case OptOther:
			if w.Text != g.Text && !(isMD5Opt(w) && isMD5Opt(g)) {
				return mismatch()
			}
		}
	}
	return ""
}
