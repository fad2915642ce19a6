package fsm

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// The Internet checksum (RFC 1071) is the 16-bit ones'-complement of the
// ones'-complement sum of the data taken as big-endian 16-bit words, an odd
// trailing byte padded on the right with zero. TCP sums a pseudo-header
// before the segment (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6).
//
// Sums are carried "unfolded" in a uint32 so callers can chain Checksum
// calls; FoldChecksum reduces and complements at the end. Only the last
// chunk of a chain may have odd length.

// protoTCP is the IP protocol number of TCP (RFC 9293 §3.1).
const protoTCP = 6

// Checksum adds data to a running ones'-complement sum (RFC 1071) and
// returns the new unfolded sum.
//
// It adds 64-bit big-endian words with end-around carry: since
// 2^16 ≡ 1 (mod 2^16-1), a ones'-complement sum of 64-bit words folds to
// the same 16-bit value as the sum of the 16-bit words (RFC 1071 §2(B),
// "parallel summation").
func Checksum(data []byte, initial uint32) uint32 {
	sum := uint64(initial)
	var c uint64
	for len(data) >= 32 {
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(data[0:8]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(data[8:16]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(data[16:24]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(data[24:32]), c)
		data = data[32:]
	}
	for len(data) >= 8 {
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(data), c)
		data = data[8:]
	}
	// The tail is added the same way: the sum may already be near 2^64.
	if len(data) >= 4 {
		sum, c = bits.Add64(sum, uint64(binary.BigEndian.Uint32(data)), c)
		data = data[4:]
	}
	if len(data) >= 2 {
		sum, c = bits.Add64(sum, uint64(binary.BigEndian.Uint16(data)), c)
		data = data[2:]
	}
	if len(data) == 1 {
		sum, c = bits.Add64(sum, uint64(data[0])<<8, c)
	}
	sum, c = bits.Add64(sum, 0, c) // end-around carry
	sum += c                       // a carry out of sum+0+c leaves sum == 0
	return fold64(sum)
}

// fold64 reduces a 64-bit ones'-complement sum to 32 bits with end-around
// carry, keeping it congruent modulo 2^16-1.
func fold64(sum uint64) uint32 {
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>32 + sum&0xffffffff
	return uint32(sum)
}

// PseudoHeaderSum is the unfolded sum of the IPv4 (RFC 9293 §3.1) or IPv6
// (RFC 8200 §8.1) pseudo-header for protocol TCP (6) and the given TCP
// length (header plus payload).
//
// An address that Is4 contributes its 4 bytes, any other its 16 bytes. Word
// order does not matter to the sum, so both pseudo-headers reduce to
// src + dst + length + 6. An IPv4-mapped IPv6 address sums to its IPv4 form
// plus 0xffff, which is zero in ones'-complement arithmetic, so mixing the
// two forms still yields the same checksum.
func PseudoHeaderSum(src, dst netip.Addr, length int) uint32 {
	sum := addrSum(src) + addrSum(dst) + protoTCP
	l := uint64(uint32(length)) // 16 bits in IPv4, 32 in IPv6
	sum += l>>16 + l&0xffff
	return fold64(sum)
}

// addrSum is the sum of the 16-bit words of a's wire form.
func addrSum(a netip.Addr) uint64 {
	if a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint16(b[0:])) + uint64(binary.BigEndian.Uint16(b[2:]))
	}
	b := a.As16()
	var s uint64
	for i := 0; i < 16; i += 2 {
		s += uint64(binary.BigEndian.Uint16(b[i:]))
	}
	return s
}

// FoldChecksum folds a sum to 16 bits and complements it: the value that
// goes in the checksum field.
func FoldChecksum(sum uint32) uint16 {
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return ^uint16(sum)
}

// TCPChecksumValid reports whether the checksum of the TCP segment tcp
// (header+payload) sent from src to dst is correct: the sum over the
// pseudo-header and the segment, checksum field included, must be all ones
// (RFC 1071 §1).
func TCPChecksumValid(src, dst netip.Addr, tcp []byte) bool {
	return FoldChecksum(Checksum(tcp, PseudoHeaderSum(src, dst, len(tcp)))) == 0
}
