package filestore

import (
	"encoding/binary"
	"fmt"

	"github.com/tcpstated/tcpstated/store"
)

// The framing, exported for other stores that keep the same bytes (the
// PostgreSQL store keeps each record's frame and each log's header exactly
// as a FileStore writes them, so Scan, `log dump` and `log verify` read
// either, and a test can compare the two byte for byte).

// EncodeHeader returns the 32-byte file header of a log whose CRC chain
// starts at seed.
func EncodeHeader(seed uint32) []byte { return encodeHeader(seed) }

// HeaderSeed checks a file header and returns its CRC chain seed, or a
// *store.DamageError (ErrBadHeader).
func HeaderSeed(b []byte) (uint32, error) {
	h, reason := decodeHeader(b)
	if reason != "" {
		return 0, &store.DamageError{Kind: ErrBadHeader, Reason: reason}
	}
	return h.seed, nil
}

// AppendFrame appends the frame of payload to dst, its CRC continuing the
// chain from prev, and returns dst and the new chain value.
func AppendFrame(dst []byte, prev uint32, payload []byte) ([]byte, uint32) {
	return appendFrame(dst, prev, payload)
}

// FrameSize is the size of the frame of an n-byte payload.
func FrameSize(n int) int64 { return frameSize(n) }

// CheckFrame verifies one whole frame whose CRC continues the chain from
// prev, by the rules the file reader applies to a complete frame, and
// returns its payload (a slice of frame) and the new chain value, or why
// it is bad.
func CheckFrame(prev uint32, frame []byte) (payload []byte, crc uint32, reason string) {
	if len(frame) < 8 {
		return nil, 0, fmt.Sprintf("frame of %d bytes has no length word", len(frame))
	}
	word := binary.LittleEndian.Uint64(frame)
	n, pad := word&lengthMask, int(word>>56)
	switch {
	case n > store.MaxRecordSize:
		return nil, 0, fmt.Sprintf("record length %d exceeds the maximum %d", n, store.MaxRecordSize)
	case pad != padFor(int(n)):
		return nil, 0, fmt.Sprintf("padding length %d does not fit record length %d", pad, n)
	case int64(len(frame)) != frameSize(int(n)):
		return nil, 0, fmt.Sprintf("frame of %d bytes, its length word says %d", len(frame), frameSize(int(n)))
	}
	payload = frame[frameHeaderSize : frameHeaderSize+n]
	crc = chainCRC(prev, frame[:8], payload)
	if stored := binary.LittleEndian.Uint32(frame[8:12]); stored != crc {
		return nil, 0, fmt.Sprintf("checksum mismatch: stored %08x, computed %08x", stored, crc)
	}
	if !allZero(frame[frameHeaderSize+n:]) {
		return nil, 0, "non-zero padding"
	}
	return payload, crc, ""
}

// A record can be framed where it is encoded, so that a batch of them is
// written as built (FileLog.AppendFramed, store.FramedLog) rather than
// copied into frames: BeginFrame leaves room for the frame's length word
// and CRC, the payload is appended after it, and EndFrame pads the frame
// and writes its length word. The CRC is AppendFramed's: it continues the
// log's chain.

// BeginFrame appends the start of a frame to dst (store.FramedLog).
func (l *FileLog) BeginFrame(dst []byte) (_ []byte, payload int) { return beginFrame(dst) }

// EndFrame ends the frame BeginFrame began (store.FramedLog).
func (l *FileLog) EndFrame(dst []byte, payload int) []byte { return endFrame(dst, payload) }

// beginFrame appends the start of a frame to dst; the payload follows,
// from offset payload.
func beginFrame(dst []byte) (_ []byte, payload int) {
	var head [frameHeaderSize]byte
	dst = append(dst, head[:]...)
	return dst, len(dst)
}

// endFrame ends the frame whose payload, the rest of dst, starts at
// payload (beginFrame's).
func endFrame(dst []byte, payload int) []byte {
	n := len(dst) - payload
	binary.LittleEndian.PutUint64(dst[payload-frameHeaderSize:], lengthWord(n))
	var zeros [8]byte
	return append(dst, zeros[:padFor(n)]...)
}
