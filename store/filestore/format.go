package filestore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// File header and frame layout; doc.go draws them.
const (
	// Magic opens every log file.
	Magic = "TCPSLOG1"
	// Version is the format version written by this package.
	Version = 1
	// HeaderSize is the size of the file header; the first frame starts here.
	HeaderSize = 32

	frameHeaderSize = 12 // length word (8) + chained CRC-32C (4)
	lengthMask      = 1<<56 - 1
	headerCRCOffset = 28
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileHeader is the decoded file header.
type fileHeader struct {
	version uint32
	seed    uint32 // the CRC chain starts here
}

// encodeHeader returns the 32-byte file header:
//
//	0  magic "TCPSLOG1"
//	8  version, uint32 LE
//	12 CRC chain seed, uint32 LE
//	16 reserved, 12 zero bytes
//	28 CRC-32C of bytes 0..27, uint32 LE
func encodeHeader(seed uint32) []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	binary.LittleEndian.PutUint32(b[8:], Version)
	binary.LittleEndian.PutUint32(b[12:], seed)
	binary.LittleEndian.PutUint32(b[headerCRCOffset:], crc32.Checksum(b[:headerCRCOffset], castagnoli))
	return b
}

// decodeHeader checks and decodes a file header. b holds the first
// min(size, HeaderSize) bytes of the file.
func decodeHeader(b []byte) (fileHeader, string) {
	if len(b) < HeaderSize {
		return fileHeader{}, fmt.Sprintf("file header truncated: %d of %d bytes", len(b), HeaderSize)
	}
	if string(b[:8]) != Magic {
		return fileHeader{}, fmt.Sprintf("bad magic %q, want %q", b[:8], Magic)
	}
	if got, want := binary.LittleEndian.Uint32(b[headerCRCOffset:]), crc32.Checksum(b[:headerCRCOffset], castagnoli); got != want {
		return fileHeader{}, fmt.Sprintf("file header checksum mismatch: stored %08x, computed %08x", got, want)
	}
	h := fileHeader{
		version: binary.LittleEndian.Uint32(b[8:]),
		seed:    binary.LittleEndian.Uint32(b[12:]),
	}
	if h.version != Version {
		return fileHeader{}, fmt.Sprintf("unsupported format version %d (this build reads %d)", h.version, Version)
	}
	return h, ""
}

// padFor returns the number of zero bytes that follow an n-byte payload so
// that the whole frame, and hence the next length word, is 8-byte aligned.
func padFor(n int) int { return -(frameHeaderSize + n) & 7 }

// frameSize is the on-disk size of a frame carrying an n-byte payload.
func frameSize(n int) int64 { return int64(frameHeaderSize + n + padFor(n)) }

// lengthWord packs the payload length (low 56 bits) and the padding length
// (top byte).
func lengthWord(n int) uint64 { return uint64(n) | uint64(padFor(n))<<56 }

// chainCRC extends the chain prev over one frame's length word and payload.
func chainCRC(prev uint32, word []byte, payload []byte) uint32 {
	return crc32.Update(crc32.Update(prev, castagnoli, word), castagnoli, payload)
}

// appendFrame appends the frame for payload to dst and returns it with the
// new chain value.
func appendFrame(dst []byte, prev uint32, payload []byte) ([]byte, uint32) {
	n := len(payload)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint64(dst, lengthWord(n))
	crc := chainCRC(prev, dst[start:start+8], payload)
	dst = binary.LittleEndian.AppendUint32(dst, crc)
	dst = append(dst, payload...)
	var zeros [8]byte
	dst = append(dst, zeros[:padFor(n)]...)
	return dst, crc
}
