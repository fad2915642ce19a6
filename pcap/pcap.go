// Package pcap writes and reads classic libpcap capture files (the format
// of tcpdump and Wireshark's ".pcap", not pcapng) with link type
// LINKTYPE_RAW: every record is a bare IPv4 or IPv6 packet, so the packets
// fsm emits (fsm.Packet.Data, fsm.AppendPacket) go in as they are.
//
// Files are written little-endian with nanosecond timestamps (magic
// 0xa1b23c4d, read by libpcap ≥ 1.5, tcpdump, Wireshark and tshark). The
// Reader also accepts microsecond files (0xa1b2c3d4) of either byte order.
//
// Timestamps are wall-clock times. A session's packets carry times on the
// session clock (a time.Duration since the session started), so the caller
// passes base.Add(clock) with a fixed base, usually the session's creation
// time.
package pcap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// File format constants (https://www.tcpdump.org/manpages/pcap-savefile.5.html,
// https://www.tcpdump.org/linktypes.html).
const (
	MagicMicroseconds uint32 = 0xa1b2c3d4 // timestamps in seconds and microseconds
	MagicNanoseconds  uint32 = 0xa1b23c4d // timestamps in seconds and nanoseconds
	VersionMajor             = 2
	VersionMinor             = 4

	// LinkTypeRaw is LINKTYPE_RAW: each packet begins with an IPv4 or
	// IPv6 header, told apart by its version nibble.
	LinkTypeRaw uint32 = 101

	// SnapLen is the snapshot length the Writer declares. Longer packets
	// are truncated to it (their original length is kept in the record),
	// as libpcap does; IP packets carrying TCP never reach it.
	SnapLen = 262144

	fileHeaderLen   = 24
	recordHeaderLen = 16
	maxRecord       = 64 << 20 // the largest record the Reader accepts
)

// Writer writes a capture file. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter writes the 24-byte file header (nanosecond timestamps,
// LINKTYPE_RAW) to w and returns a Writer for the packet records.
func NewWriter(w io.Writer) (*Writer, error) {
	h := make([]byte, fileHeaderLen)
	le := binary.LittleEndian
	le.PutUint32(h[0:], MagicNanoseconds)
	le.PutUint16(h[4:], VersionMajor)
	le.PutUint16(h[6:], VersionMinor)
	// thiszone (4 bytes) and sigfigs (4 bytes) are zero: times are UTC.
	le.PutUint32(h[16:], SnapLen)
	le.PutUint32(h[20:], LinkTypeRaw)
	if _, err := w.Write(h); err != nil {
		return nil, fmt.Errorf("pcap: writing file header: %w", err)
	}
	return &Writer{w: w}, nil
}

// WritePacket writes one record: data, an IPv4 or IPv6 packet, captured at
// t. The record goes to the underlying writer in a single Write call.
// Times before 1970 or from 2106 on (outside the format's unsigned 32-bit
// seconds) are an error, and so is an empty packet.
func (pw *Writer) WritePacket(t time.Time, data []byte) error {
	if len(data) == 0 {
		return errors.New("pcap: empty packet")
	}
	sec := t.Unix()
	if sec < 0 || sec > 1<<32-1 {
		return fmt.Errorf("pcap: time %s is outside the format's range (1970 to 2106)", t.UTC().Format(time.RFC3339Nano))
	}
	incl := min(len(data), SnapLen)
	b := pw.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(sec))
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Nanosecond()))
	b = binary.LittleEndian.AppendUint32(b, uint32(incl))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data[:incl]...)
	pw.buf = b
	if _, err := pw.w.Write(b); err != nil {
		return fmt.Errorf("pcap: writing packet record: %w", err)
	}
	return nil
}

// Record is one packet read back from a capture file.
type Record struct {
	Time    time.Time // in UTC
	Data    []byte    // the captured bytes (at most the snapshot length)
	OrigLen int       // the packet's length on the wire
}

// Reader reads a classic pcap file of any link type, written in either
// byte order with microsecond or nanosecond timestamps. It exists mainly
// to test Writer; it is not safe for concurrent use.
type Reader struct {
	r        io.Reader
	order    binary.ByteOrder
	nanos    bool
	snapLen  uint32
	linkType uint32
	hdr      [recordHeaderLen]byte
}

// NewReader reads and checks the file header.
func NewReader(r io.Reader) (*Reader, error) {
	var h [fileHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("pcap: reading file header: %w", err)
	}
	pr := &Reader{r: r}
	switch magic := binary.LittleEndian.Uint32(h[:]); {
	case magic == MagicMicroseconds || magic == MagicNanoseconds:
		pr.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == MagicMicroseconds || binary.BigEndian.Uint32(h[:]) == MagicNanoseconds:
		pr.order = binary.BigEndian
	default:
		return nil, fmt.Errorf("pcap: magic number 0x%08x is not a classic pcap file's", binary.BigEndian.Uint32(h[:]))
	}
	pr.nanos = pr.order.Uint32(h[:]) == MagicNanoseconds
	if major := pr.order.Uint16(h[4:]); major != VersionMajor {
		return nil, fmt.Errorf("pcap: version %d.%d is not supported (want 2.x)", major, pr.order.Uint16(h[6:]))
	}
	pr.snapLen = pr.order.Uint32(h[16:])
	pr.linkType = pr.order.Uint32(h[20:]) & 0x0fffffff // the top bits may carry FCS information
	return pr, nil
}

// LinkType returns the file's link-layer header type (LinkTypeRaw for
// files this package writes).
func (pr *Reader) LinkType() uint32 { return pr.linkType }

// SnapLen returns the file's snapshot length.
func (pr *Reader) SnapLen() uint32 { return pr.snapLen }

// Nanoseconds reports whether the file has nanosecond timestamps.
func (pr *Reader) Nanoseconds() bool { return pr.nanos }

// Next returns the next record, or io.EOF after the last one. A file that
// ends inside a record returns io.ErrUnexpectedEOF.
func (pr *Reader) Next() (Record, error) {
	if _, err := io.ReadFull(pr.r, pr.hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Record{}, fmt.Errorf("pcap: truncated record header: %w", err)
		}
		return Record{}, err // io.EOF: no more records
	}
	o := pr.order
	sec, frac := o.Uint32(pr.hdr[0:]), o.Uint32(pr.hdr[4:])
	incl, orig := o.Uint32(pr.hdr[8:]), o.Uint32(pr.hdr[12:])
	// Trust the file's snapshot length, within reason: a corrupt header
	// must not make us allocate gigabytes.
	limit := min(max(pr.snapLen, SnapLen), maxRecord)
	if incl > limit {
		return Record{}, fmt.Errorf("pcap: record of %d bytes exceeds the snapshot length %d", incl, limit)
	}
	ns := int64(frac)
	if !pr.nanos {
		ns *= 1000
	}
	if ns >= int64(time.Second) {
		return Record{}, fmt.Errorf("pcap: record timestamp fraction %d is not below one second", frac)
	}
	data := make([]byte, incl)
	if _, err := io.ReadFull(pr.r, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Record{}, fmt.Errorf("pcap: truncated record data: %w", err)
	}
	return Record{Time: time.Unix(int64(sec), ns).UTC(), Data: data, OrigLen: int(orig)}, nil
}
