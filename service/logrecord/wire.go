package logrecord

import "google.golang.org/protobuf/encoding/protowire"

// Small appenders the compiler inlines, writing exactly what protowire's
// AppendTag, AppendVarint, AppendBytes and AppendString write: a record
// of the bulk path is a dozen such fields, and a call per field was most
// of its encoding time.

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, n protowire.Number, t protowire.Type) []byte {
	return appendUvarint(b, protowire.EncodeTag(n, t))
}

func appendLenBytes(b, v []byte) []byte { return append(appendUvarint(b, uint64(len(v))), v...) }

func appendLenString(b []byte, v string) []byte {
	return append(appendUvarint(b, uint64(len(v))), v...)
}

// A nested message is written before its length is known: beginMessage
// writes its tag and one byte for the length, endMessage fills it in and,
// for a message of 128 bytes or more, moves the message right to make room
// for a longer length. The bytes are those of proto.Marshal, which sizes
// the message first; on the bulk path every nested message is short, so
// nothing moves and nothing is sized twice.

// beginMessage starts a length-delimited field n; start is where the
// message begins.
func beginMessage(b []byte, n protowire.Number) (_ []byte, start int) {
	b = append(appendTag(b, n, protowire.BytesType), 0)
	return b, len(b)
}

// endMessage ends the message begun at start.
func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[start+extra:], b[start:start+n])
	appendUvarint(b[:start-1], uint64(n))
	return b
}
