// Package pcapng writes pcapng capture files (the format of Wireshark's
// ".pcapng", draft-ietf-opsawg-pcapng) with one interface of link type
// LINKTYPE_RAW (bare IPv4 or IPv6 packets, as the engine emits them),
// nanosecond timestamps, and per packet an optional comment (opt_comment)
// and direction (epb_flags): tcpstated puts the engine's explanation of
// each packet there, which Wireshark shows in the packet's details and
// tshark as the field frame.comment.
//
// Files are little-endian: one Section Header Block, one Interface
// Description Block, then an Enhanced Packet Block per packet.
package pcapng

import (
	"encoding/binary"
	"io"
	"time"
)

// Block types and option codes (draft-ietf-opsawg-pcapng §4, §10).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	byteOrderMagic = 0x1A2B3C4D

	optEndOfOpt = 0
	optComment  = 1
	optTSResol  = 9 // if_tsresol
	optEPBFlags = 2 // epb_flags

	// LinkTypeRaw is LINKTYPE_RAW: each packet begins with an IPv4 or IPv6
	// header.
	LinkTypeRaw = 101
	// SnapLen is the snapshot length declared; longer packets are cut to
	// it (their original length is kept).
	SnapLen = 262144
	// maxComment bounds one comment (an option's length is 16 bits).
	maxComment = 65000
)

// Direction is a packet's direction in epb_flags.
type Direction uint8

const (
	Unknown  Direction = 0
	Inbound  Direction = 1
	Outbound Direction = 2
)

// Writer writes a pcapng file. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter writes the section header and the interface description to w.
func NewWriter(w io.Writer, application string) (*Writer, error) {
	pw := &Writer{w: w}
	// Section Header Block: byte-order magic, version 1.0, section length
	// unknown (-1), shb_userappl (4).
	body := le32(nil, byteOrderMagic)
	body = le16(body, 1)
	body = le16(body, 0)
	body = le64(body, ^uint64(0))
	if application != "" {
		body = option(body, 4, []byte(application))
	}
	body = le32(body, optEndOfOpt) // code 0, length 0
	if err := pw.block(blockSHB, body); err != nil {
		return nil, err
	}
	// Interface Description Block: LINKTYPE_RAW, nanosecond timestamps.
	body = le16(nil, LinkTypeRaw)
	body = le16(body, 0)
	body = le32(body, SnapLen)
	body = option(body, optTSResol, []byte{9})
	body = le32(body, optEndOfOpt)
	if err := pw.block(blockIDB, body); err != nil {
		return nil, err
	}
	return pw, nil
}

// WritePacket writes one packet with its time, direction and comment
// (none when empty; cut at 65000 bytes).
func (pw *Writer) WritePacket(t time.Time, data []byte, dir Direction, comment string) error {
	ts := uint64(t.UnixNano())
	capLen := len(data)
	if capLen > SnapLen {
		capLen = SnapLen
	}
	body := pw.buf[:0]
	body = le32(body, 0) // interface 0
	body = le32(body, uint32(ts>>32))
	body = le32(body, uint32(ts))
	body = le32(body, uint32(capLen))
	body = le32(body, uint32(len(data)))
	body = append(body, data[:capLen]...)
	body = pad(body)
	if dir != Unknown {
		body = option(body, optEPBFlags, le32(nil, uint32(dir)))
	}
	if comment != "" {
		if len(comment) > maxComment {
			comment = comment[:maxComment]
		}
		body = option(body, optComment, []byte(comment))
	}
	body = le32(body, optEndOfOpt)
	pw.buf = body
	return pw.block(blockEPB, body)
}

// block writes a block: type, total length, body, total length.
func (pw *Writer) block(typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	h := le32(le32(make([]byte, 0, 8), typ), n)
	if _, err := pw.w.Write(h); err != nil {
		return err
	}
	if _, err := pw.w.Write(body); err != nil {
		return err
	}
	_, err := pw.w.Write(le32(nil, n))
	return err
}

// option appends one option, its value padded to 32 bits.
func option(b []byte, code uint16, v []byte) []byte {
	b = le16(b, code)
	b = le16(b, uint16(len(v)))
	b = append(b, v...)
	return pad(b)
}

func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
