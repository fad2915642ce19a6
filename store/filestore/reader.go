package filestore

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/tcpstated/tcpstated/store"
)

// ErrBadHeader: the file header is short, has the wrong magic, fails its
// checksum or names an unknown version. Such a file is never modified by
// Open. It is a kind of store.ErrCorrupt.
var ErrBadHeader = fmt.Errorf("filestore: bad file header: %w", store.ErrCorrupt)

const sectorSize = 512 // granularity at which a torn write is assumed to leave zeros

// scanner reads frames sequentially and verifies the CRC chain.
type scanner struct {
	br    *bufio.Reader
	off   int64 // offset of the next frame
	size  int64 // bytes in the file (the scan stops there)
	crc   uint32
	index uint64 // records read so far
	buf   []byte
}

// newScanner reads and checks the file header. r must hold size bytes.
func newScanner(r io.ReaderAt, size int64) (*scanner, fileHeader, error) {
	s := &scanner{size: size}
	n := min(size, HeaderSize)
	hb := make([]byte, n)
	if _, err := r.ReadAt(hb, 0); err != nil && !(err == io.EOF && n == 0) {
		return nil, fileHeader{}, fmt.Errorf("filestore: reading file header: %w", err)
	}
	h, reason := decodeHeader(hb)
	if reason != "" {
		return nil, fileHeader{}, &store.DamageError{Kind: ErrBadHeader, Offset: 0, Reason: reason}
	}
	s.crc = h.seed
	s.off = HeaderSize
	s.br = bufio.NewReaderSize(io.NewSectionReader(r, HeaderSize, size-HeaderSize), 64<<10)
	return s, h, nil
}

func (s *scanner) damage(kind error, format string, args ...any) error {
	return &store.DamageError{Kind: kind, Offset: s.off, Index: s.index, Reason: fmt.Sprintf(format, args...)}
}

// next returns the next record's payload, valid until the following call;
// io.EOF at a clean end of file; a *store.DamageError at the first bad frame (the
// scanner must not be used after that); or an I/O error.
func (s *scanner) next() ([]byte, error) {
	rem := s.size - s.off
	if rem == 0 {
		return nil, io.EOF
	}
	if rem < 8 {
		b := s.grow(int(rem))
		if _, err := io.ReadFull(s.br, b); err != nil {
			return nil, ioErr(err)
		}
		if allZero(b) {
			return nil, s.damage(store.ErrTornTail, "zero-filled tail of %d bytes", rem)
		}
		return nil, s.damage(store.ErrTornTail, "incomplete frame: %d of 8 length bytes", rem)
	}
	b := s.grow(8)
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, ioErr(err)
	}
	word := binary.LittleEndian.Uint64(b)
	if word == 0 {
		// No valid frame has a zero length word: an empty payload carries
		// 4 bytes of padding.
		zero, err := s.restIsZero(rem - 8)
		if err != nil {
			return nil, err
		}
		if zero {
			return nil, s.damage(store.ErrTornTail, "zero-filled tail of %d bytes", rem)
		}
		return nil, s.damage(store.ErrCorrupt, "zero length word followed by non-zero data")
	}
	n, pad := word&lengthMask, int(word>>56)
	if n > store.MaxRecordSize {
		return nil, s.damage(store.ErrCorrupt, "record length %d exceeds the maximum %d", n, store.MaxRecordSize)
	}
	if pad != padFor(int(n)) {
		return nil, s.damage(store.ErrCorrupt, "padding length %d does not fit record length %d", pad, n)
	}
	fs := frameSize(int(n))
	if fs > rem {
		// Refused before allocating. A damaged length word that happens to
		// point past the end cannot be told from an interrupted write.
		return nil, s.damage(store.ErrTornTail, "incomplete frame: %d of %d bytes", rem, fs)
	}
	frame := s.grow(int(fs)) // may reallocate: put the word back
	binary.LittleEndian.PutUint64(frame, word)
	if _, err := io.ReadFull(s.br, frame[8:]); err != nil {
		return nil, ioErr(err)
	}
	stored := binary.LittleEndian.Uint32(frame[8:12])
	payload := frame[frameHeaderSize : frameHeaderSize+n]
	crc := chainCRC(s.crc, frame[:8], payload)
	if crc != stored {
		torn, err := s.tornFrame(frame, rem-fs)
		if err != nil {
			return nil, err
		}
		if torn {
			return nil, s.damage(store.ErrTornTail, "last frame partly written (checksum mismatch, zero-filled sector)")
		}
		return nil, s.damage(store.ErrCorrupt, "checksum mismatch: stored %08x, computed %08x", stored, crc)
	}
	if !allZero(frame[frameHeaderSize+n:]) {
		return nil, s.damage(store.ErrCorrupt, "non-zero padding")
	}
	s.crc = crc
	s.off += fs
	s.index++
	return payload, nil
}

// tornFrame reports whether a frame that failed its checksum looks like an
// interrupted write: it is the last data in the file (only zeros follow) and
// one of its pieces, cut at 512-byte file-offset boundaries, is all zeros
// (the same rule as etcd's decoder).
func (s *scanner) tornFrame(frame []byte, after int64) (bool, error) {
	zero, err := s.restIsZero(after)
	if err != nil || !zero {
		return false, err
	}
	off := s.off
	for len(frame) > 0 {
		k := int(sectorSize - off%sectorSize)
		k = min(k, len(frame))
		if allZero(frame[:k]) {
			return true, nil
		}
		frame, off = frame[k:], off+int64(k)
	}
	return false, nil
}

// restIsZero consumes n bytes and reports whether all are zero.
func (s *scanner) restIsZero(n int64) (bool, error) {
	var chunk [4096]byte
	for n > 0 {
		k := min(n, int64(len(chunk)))
		if _, err := io.ReadFull(s.br, chunk[:k]); err != nil {
			return false, ioErr(err)
		}
		if !allZero(chunk[:k]) {
			return false, nil
		}
		n -= k
	}
	return true, nil
}

func (s *scanner) grow(n int) []byte {
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	return s.buf[:n]
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ioErr reports a read that came up short of the size measured at the
// start: the file shrank underneath the reader.
func ioErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("filestore: file shrank while being read: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("filestore: read: %w", err)
}

// ScanResult summarises a scan of a whole log file.
type ScanResult struct {
	Records int64 // good records before the end or the damage
	Size    int64 // bytes examined (the file size)
	End     int64 // offset just past the last good record
	Damage  *store.DamageError
}

// Scan reads a log file image of size bytes from r without modifying it,
// calling fn (if not nil) for every good record; the payload is only valid
// during the call. A header problem is returned as the error; damage after
// the header is returned in ScanResult.Damage with err == nil. An error from
// fn stops the scan and is returned. This is what `tcpstated log dump` and
// `log verify` need for a file outside a store.
func Scan(r io.ReaderAt, size int64, fn func(index uint64, payload []byte) error) (ScanResult, error) {
	sc, _, err := newScanner(r, size)
	if err != nil {
		return ScanResult{Size: size}, err
	}
	for {
		p, err := sc.next()
		if err != nil {
			res := ScanResult{Records: int64(sc.index), Size: size, End: sc.off}
			if err == io.EOF {
				return res, nil
			}
			if d, ok := err.(*store.DamageError); ok {
				res.Damage = d
				return res, nil
			}
			return res, err
		}
		if fn != nil {
			if err := fn(sc.index-1, p); err != nil {
				return ScanResult{Records: int64(sc.index), Size: size, End: sc.off}, err
			}
		}
	}
}

// ScanFile is Scan of the log file at path, opened read-only: it works
// while a server has the file open.
func ScanFile(path string, fn func(index uint64, payload []byte) error) (ScanResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ScanResult{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ScanResult{}, err
	}
	return Scan(f, fi.Size(), fn)
}
