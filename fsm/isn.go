package fsm

import (
	"encoding/binary"
	"math/bits"
	"time"
)

// The engine's keyed hash is SipHash-2-4 (the PRF Linux uses for ISNs),
// keyed by the session secret: deterministic for a given secret, unguessable
// without it.
func siphash(k0, k1 uint64, m []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(m)
	for len(m) >= 8 {
		w := binary.LittleEndian.Uint64(m)
		v3 ^= w
		round()
		round()
		v0 ^= w
		m = m[8:]
	}
	var last [8]byte
	copy(last[:], m)
	last[7] = byte(n)
	w := binary.LittleEndian.Uint64(last[:])
	v3 ^= w
	round()
	round()
	v0 ^= w
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

// hashTuple hashes a 4-tuple and extra words with the session secret.
func (e *Engine) hashTuple(t Tuple, domain byte, extra ...uint32) uint64 {
	var buf [64]byte
	b := buf[:0]
	b = append(b, domain)
	la, ra := t.Local.Addr().As16(), t.Remote.Addr().As16()
	b = append(b, la[:]...)
	b = binary.BigEndian.AppendUint16(b, t.Local.Port())
	b = append(b, ra[:]...)
	b = binary.BigEndian.AppendUint16(b, t.Remote.Port())
	for _, x := range extra {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	k0 := binary.LittleEndian.Uint64(e.cfg.Secret[:8])
	k1 := binary.LittleEndian.Uint64(e.cfg.Secret[8:])
	return siphash(k0, k1, b)
}

// isn chooses an initial sequence number per RFC 6528 §3:
// ISN = M + F(localip, localport, remoteip, remoteport, secretkey), where M
// ticks every 4 microseconds on the engine clock.
func (e *Engine) isn(t Tuple) Seq {
	if e.cfg.ISNMode == ISNFixed {
		return Seq(e.cfg.FixedISN)
	}
	m := uint32(e.now / (4 * time.Microsecond))
	return Seq(m + uint32(e.hashTuple(t, 'i')))
}

// tsOffset is a per-connection offset for TSval (RFC 7323 §5.4), so
// timestamps do not reveal the engine clock.
func (e *Engine) tsOffset(t Tuple) uint32 { return uint32(e.hashTuple(t, 't')) }

// SYN cookies (RFC 4987 §3.6). The cookie is the ISS we answer with:
//
//	bits 31..27  t mod 32, t = time / 64 s
//	bits 26..24  index of the MSS in cookieMSS
//	bits 23..0   keyed hash of the 4-tuple, t and the peer's ISN
//
// It is valid for the current and the previous t (64-128 s). Only the MSS
// survives: window scaling, SACK and timestamps are off on such connections,
// the limitation RFC 4987 §3.6 describes.
var cookieMSS = [8]uint16{536, 1200, 1220, 1300, 1400, 1440, 1452, 1460}

const cookiePeriod = 64 * time.Second

func (e *Engine) cookieFor(t Tuple, peerISN Seq, mss uint16) Seq {
	slot := uint32(e.now / cookiePeriod)
	idx := 0
	for i, m := range cookieMSS {
		if m <= mss {
			idx = i
		}
	}
	return e.cookieAt(t, peerISN, slot, uint32(idx))
}

func (e *Engine) cookieAt(t Tuple, peerISN Seq, slot, idx uint32) Seq {
	h := uint32(e.hashTuple(t, 'c', slot, uint32(peerISN))) & 0xffffff
	return Seq((slot&31)<<27 | idx<<24 | h)
}

// checkCookie validates the cookie in an ACK (cookie = SEG.ACK-1, peer ISN =
// SEG.SEQ-1) and returns the MSS it encodes.
func (e *Engine) checkCookie(t Tuple, seg *Segment) (uint16, bool) {
	cookie := uint32(seg.Ack - 1)
	now := uint32(e.now / cookiePeriod)
	idx := (cookie >> 24) & 7
	for _, slot := range [...]uint32{now, now - 1} {
		if slot > now || (slot&31) != cookie>>27 {
			continue
		}
		if e.cookieAt(t, seg.Seq-1, slot, idx) == Seq(cookie) {
			return cookieMSS[idx], true
		}
	}
	return 0, false
}
