package fsm

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
)

// TCP-MD5 signatures (RFC 2385). Every segment to or from a peer with a
// key carries option kind 19 (length 18): the MD5 digest of the
// pseudo-header, the TCP header without options and with a zero checksum,
// the data, and the key (RFC 2385 §2.0). A segment from such a peer
// without a valid signature is dropped before any other processing
// (RFC 2385 §2.0, §4.0: no RST, no ACK in reply). RFC 5925 (TCP-AO)
// obsoletes RFC 2385; TCP-AO is not implemented.

const (
	optMD5    = 19
	optLenMD5 = 18
	// md5Space is the option space one signature takes: NOP, NOP, kind 19.
	md5Space = 20
)

const codeMD5Base Code = 1500

const (
	CodeMD5Missing Code = codeMD5Base + iota
	CodeMD5Bad
	numMD5Codes
)

const secMD5 = "RFC 2385 §2.0"

var md5CodeSpecs = [numMD5Codes - codeMD5Base]codeSpec{
	CodeMD5Missing - codeMD5Base: {"MD5_MISSING", secMD5, "the peer has a TCP-MD5 key but the segment ({SEG.SEQ}) carries no MD5 signature option: dropped without a reply, before any other check (RFC 2385 §2.0: it MUST be discarded)"},
	CodeMD5Bad - codeMD5Base:     {"MD5_BAD", secMD5, "the segment's ({SEG.SEQ}) MD5 signature does not match the digest of its pseudo-header, header, data and the peer's key: dropped without a reply, before any other check (RFC 2385 §2.0)"},
}

// SetMD5Key sets the TCP-MD5 key for every connection with peer (RFC 2385
// §3.0: a key per connection, which BGP configures per neighbour); an
// empty key removes it. Connections opened afterwards sign what they send
// and refuse unsigned segments; already open ones keep their MSS. Keys
// are at most 80 bytes (Linux's TCP_MD5SIG_MAXKEYLEN).
func (e *Engine) SetMD5Key(peer netip.Addr, key []byte) error {
	if !peer.IsValid() || len(key) > 80 {
		return ErrInvalidAddress
	}
	// Copy on write: a Clone shares the map, so it is never changed.
	m := make(map[netip.Addr]string, len(e.md5Keys)+1)
	for k, v := range e.md5Keys {
		m[k] = v
	}
	peer = peer.Unmap()
	if len(key) == 0 {
		delete(m, peer)
	} else {
		m[peer] = string(key)
	}
	e.md5Keys = m
	return nil
}

// MD5Key returns a copy of the TCP-MD5 key set for peer, nil for none
// (so a caller can put back a key it replaced).
func (e *Engine) MD5Key(peer netip.Addr) []byte {
	if k := e.md5Key(peer); k != "" {
		return []byte(k)
	}
	return nil
}

// md5Key is the key for peer, "" for none.
func (e *Engine) md5Key(peer netip.Addr) string {
	if len(e.md5Keys) == 0 {
		return ""
	}
	return e.md5Keys[peer.Unmap()]
}

// MD5Digest is the RFC 2385 §2.0 digest of a TCP segment from src to dst
// under key: the pseudo-header (RFC 9293's for IPv4; for IPv6 the RFC 8200
// §8.1 form, as Linux and FreeBSD use), the 20-byte header with a zero
// checksum, the data after the options, and the key.
func MD5Digest(src, dst netip.Addr, tcp []byte, key []byte) [16]byte {
	h := md5.New()
	var ph []byte
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		ph = append(append(ph, s[:]...), d[:]...)
		ph = append(ph, 0, protoTCP)
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(tcp)))
	} else {
		s, d := src.As16(), dst.As16()
		ph = append(append(ph, s[:]...), d[:]...)
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(tcp)))
		ph = append(ph, 0, 0, 0, protoTCP)
	}
	h.Write(ph)
	var hdr [MinHeaderLen]byte
	copy(hdr[:], tcp)
	hdr[16], hdr[17] = 0, 0
	h.Write(hdr[:])
	if hl := int(tcp[12]>>4) * 4; hl <= len(tcp) {
		h.Write(tcp[hl:])
	}
	h.Write(key)
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// md5Offset is the offset in tcp of the signature option's 16 digest
// bytes, or -1 when there is none.
func md5Offset(tcp []byte) int {
	if len(tcp) < MinHeaderLen {
		return -1
	}
	hl := int(tcp[12]>>4) * 4
	if hl > len(tcp) {
		return -1
	}
	for i := MinHeaderLen; i < hl; {
		switch tcp[i] {
		case optEOL:
			return -1
		case optNOP:
			i++
			continue
		}
		if i+1 >= hl || tcp[i+1] < 2 {
			return -1
		}
		if tcp[i] == optMD5 && tcp[i+1] == optLenMD5 && i+optLenMD5 <= hl {
			return i + 2
		}
		i += int(tcp[i+1])
	}
	return -1
}

// SignMD5 fills in the MD5 signature option of the TCP segment of an IP
// packet under key and recomputes the TCP checksum. It reports false when
// the packet does not decode or carries no signature option.
func SignMD5(pkt []byte, key []byte) bool {
	src, dst, tcp, err := ParsePacket(pkt)
	if err != nil {
		return false
	}
	return signTCP(src, dst, tcp, key)
}

func signTCP(src, dst netip.Addr, tcp []byte, key []byte) bool {
	off := md5Offset(tcp)
	if off < 0 {
		return false
	}
	d := MD5Digest(src, dst, tcp, key)
	copy(tcp[off:], d[:])
	tcp[16], tcp[17] = 0, 0
	binary.BigEndian.PutUint16(tcp[16:], FoldChecksum(Checksum(tcp, PseudoHeaderSum(src, dst, len(tcp)))))
	return true
}

// md5Drop checks an inbound segment's signature when its sender has a key
// and reports whether it was dropped (and explained).
func (e *Engine) md5Drop(c *conn, src, dst netip.Addr, tcp []byte, seg *Segment) bool {
	key := e.md5Key(src)
	if key == "" {
		return false
	}
	var id EndpointID
	if c != nil {
		id = c.id
	}
	off := md5Offset(tcp)
	if off < 0 {
		e.explain(id, CodeMD5Missing, ActionDropped, Field{"SEG.SEQ", uint64(seg.Seq)})
		return true
	}
	d := MD5Digest(src, dst, tcp, []byte(key))
	if subtle.ConstantTimeCompare(d[:], tcp[off:off+16]) != 1 {
		e.explain(id, CodeMD5Bad, ActionDropped, Field{"SEG.SEQ", uint64(seg.Seq)})
		return true
	}
	return false
}
