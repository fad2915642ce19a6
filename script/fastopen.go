package script

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// TCP Fast Open options (RFC 7413 §4.1.1) in packetdrill's syntax: "FO"
// (a cookie request), "FO 0102030405060708" (a cookie, in hex), and the
// experimental form "FOEXP" / "FOEXP 0102..." (kind 254, magic 0xF989).

const (
	tcpOptFastOpen = 34
	tcpOptExp      = 254
	fastOpenMagic  = 0xF989
)

// encodeFastOpen writes an FO or FOEXP option given as written; ok is
// false if text is not one.
func encodeFastOpen(b []byte, text string) ([]byte, bool, error) {
	f := strings.Fields(text)
	if len(f) == 0 || len(f) > 2 || (f[0] != "FO" && f[0] != "FOEXP") {
		return b, false, nil
	}
	var cookie []byte
	if len(f) == 2 {
		var err error
		if cookie, err = hex.DecodeString(f[1]); err != nil {
			return b, true, fmt.Errorf("the cookie of %q is not hexadecimal bytes: %v", text, err)
		}
	}
	if f[0] == "FOEXP" {
		b = append(b, tcpOptExp, byte(4+len(cookie)))
		b = binary.BigEndian.AppendUint16(b, fastOpenMagic)
	} else {
		b = append(b, tcpOptFastOpen, byte(2+len(cookie)))
	}
	return append(b, cookie...), true, nil
}

// decodeFastOpen renders a kind-34 or Fast Open kind-254 option body as
// packetdrill writes it.
func decodeFastOpen(kind byte, body []byte) (string, bool) {
	name := "FO"
	switch {
	case kind == tcpOptFastOpen:
	case kind == tcpOptExp && len(body) >= 2 && binary.BigEndian.Uint16(body) == fastOpenMagic:
		name, body = "FOEXP", body[2:]
	default:
		return "", false
	}
	if len(body) > 0 {
		name += " " + hex.EncodeToString(body)
	}
	return name, true
}
