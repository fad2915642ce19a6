package fsm

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// TCP option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const (
	optEOL       = 0  // End of Option List (RFC 9293 §3.2)
	optNOP       = 1  // No-Operation (RFC 9293 §3.2)
	optMSS       = 2  // Maximum Segment Size (RFC 9293 §3.2, §3.7.1)
	optWScale    = 3  // Window Scale (RFC 7323 §2.2)
	optSACKPerm  = 4  // SACK-Permitted (RFC 2018 §2)
	optSACK      = 5  // SACK (RFC 2018 §3)
	optTimestamp = 8  // Timestamps (RFC 7323 §3.2)
	maxOptionLen = 40 // MaxHeaderLen - MinHeaderLen
)

// Encoded lengths of the known options, kind and length bytes included.
const (
	optLenMSS       = 4
	optLenWScale    = 3
	optLenSACKPerm  = 2
	optLenTimestamp = 10
	optLenSACKBlock = 8 // per block, after the 2-byte kind and length
)

// parseOptions decodes the option bytes of a TCP header (everything after
// the fixed 20 bytes, up to the data offset) into o.
//
// EOL ends the list and NOP is skipped (RFC 9293 §3.2). Known kinds must
// have their exact length; unknown kinds are skipped by their length and
// counted. A repeated option overwrites the earlier one, as on Linux. Linux
// silently ignores a known option of the wrong length; we reject the
// segment instead, so a malformed packet is reported rather than half-read.
// Offsets in errors count from the start of the TCP header.
func parseOptions(b []byte, o *Options) error {
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case optEOL:
			return nil
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return &ParseError{Layer: "tcp option", Field: "option length", Reason: fmt.Sprintf(
				"option kind %d at offset %d has no length byte: the %d-byte header ends first",
				kind, MinHeaderLen+i, MinHeaderLen+len(b))}
		}
		n := int(b[i+1])
		if n < 2 {
			return &ParseError{Layer: "tcp option", Field: "option length", Reason: fmt.Sprintf(
				"option kind %d at offset %d has length %d; the minimum is 2",
				kind, MinHeaderLen+i, n)}
		}
		if i+n > len(b) {
			return &ParseError{Layer: "tcp option", Field: "option length", Reason: fmt.Sprintf(
				"option kind %d at offset %d has length %d, running past the end of the %d-byte header",
				kind, MinHeaderLen+i, n, MinHeaderLen+len(b))}
		}
		body := b[i+2 : i+n]
		switch kind {
		case optMSS:
			if n != optLenMSS {
				return optLenError("mss length", kind, i, n, "4")
			}
			o.MSS = binary.BigEndian.Uint16(body)
			o.HasMSS = true
		case optWScale:
			if n != optLenWScale {
				return optLenError("window scale length", kind, i, n, "3")
			}
			// Kept as sent even above 14; the engine clamps (RFC 7323 §2.3).
			o.WScale = body[0]
			o.HasWScale = true
		case optSACKPerm:
			if n != optLenSACKPerm {
				return optLenError("sack-permitted length", kind, i, n, "2")
			}
			o.SACKPermitted = true
		case optSACK:
			blocks := (n - 2) / optLenSACKBlock
			if (n-2)%optLenSACKBlock != 0 || blocks < 1 || blocks > MaxSACKBlocks {
				return optLenError("sack length", kind, i, n, "2+8n for 1 to 4 blocks")
			}
			o.SACK = [MaxSACKBlocks]SACKBlock{}
			for k := range blocks {
				o.SACK[k] = SACKBlock{
					Start: Seq(binary.BigEndian.Uint32(body[8*k:])),
					End:   Seq(binary.BigEndian.Uint32(body[8*k+4:])),
				}
			}
			o.NumSACK = uint8(blocks)
		case optMD5: // RFC 2385 §3.0
			if n != optLenMD5 {
				return optLenError("md5 signature length", kind, i, n, "18")
			}
			o.HasMD5 = true
			copy(o.MD5[:], b[i+2:i+n])
		case optTimestamp:
			if n != optLenTimestamp {
				return optLenError("timestamp length", kind, i, n, "10")
			}
			o.TSVal = binary.BigEndian.Uint32(body)
			o.TSEcr = binary.BigEndian.Uint32(body[4:])
			o.HasTimestamp = true
		case optFastOpen:
			o.setFastOpen(body, false)
		case optExperimental:
			if !o.parseExperimental(body) && o.Unknown < 255 {
				o.Unknown++
			}
		default:
			if o.Unknown < 255 {
				o.Unknown++
			}
		}
		i += n
	}
	return nil
}

func optLenError(field string, kind byte, i, n int, want string) error {
	return &ParseError{Layer: "tcp option", Field: field, Reason: fmt.Sprintf(
		"option kind %d at offset %d has length %d; want %s", kind, MinHeaderLen+i, n, want)}
}

// The encoder lays options out as Linux's tcp_options_write does, so that
// packetdrill scripts written against Linux compare equal:
//
//	MSS
//	SACK-permitted, TS            (both)   | NOP, NOP, TS (TS only)
//	NOP, NOP, SACK-permitted      (SACK-permitted without TS)
//	NOP, WScale
//	NOP, NOP, SACK blocks...      (as many as fit in 40 bytes)
//	Fast Open, EOL padding        (RFC 7413; left out if it does not fit)
//
// Every other item is a multiple of 4 bytes, so only a Fast Open option
// is ever padded, with EOL as FreeBSD does.
// Unknown options are not encoded.

// optionsLenNoSACK is the encoded length of everything before the SACK
// blocks.
func (o *Options) optionsLenNoSACK() int {
	n := o.baseOptionsLen()
	return n + (o.fastOpenLen(n)+3)&^3
}

// baseOptionsLen is the encoded length of MSS, SACK-permitted, TS and
// WScale.
func (o *Options) baseOptionsLen() int {
	n := 0
	if o.HasMSS {
		n += 4
	}
	if o.HasTimestamp || o.SACKPermitted {
		n += 4 // SACK-permitted and/or the two NOPs
	}
	if o.HasTimestamp {
		n += 8 // the TS option after the first 2 bytes counted above
	}
	if o.HasWScale {
		n += 4
	}
	if o.HasMD5 {
		n += md5Space
	}
	return n
}

// sackBlocksToEncode is how many of the first NumSACK blocks fit in the
// option space after the other options. RFC 2018 §4 puts the most recent
// block first, so dropping from the end keeps the most useful ones.
func (o *Options) sackBlocksToEncode() int {
	n := min(int(o.NumSACK), MaxSACKBlocks)
	if n == 0 {
		return 0
	}
	room := (maxOptionLen - o.optionsLenNoSACK() - 4) / optLenSACKBlock
	return max(0, min(n, room))
}

// optionsLen is the encoded length of o, padded to 4 bytes.
func (o *Options) optionsLen() int {
	n := o.optionsLenNoSACK()
	if k := o.sackBlocksToEncode(); k > 0 {
		n += 4 + optLenSACKBlock*k
	}
	return (n + 3) &^ 3
}

// appendOptions appends the encoding of o (optionsLen bytes) to b.
func appendOptions(b []byte, o *Options) []byte {
	start := len(b)
	if o.HasMSS {
		b = append(b, optMSS, optLenMSS)
		b = binary.BigEndian.AppendUint16(b, o.MSS)
	}
	switch {
	case o.HasTimestamp && o.SACKPermitted:
		b = append(b, optSACKPerm, optLenSACKPerm)
	case o.HasTimestamp:
		b = append(b, optNOP, optNOP)
	case o.SACKPermitted:
		b = append(b, optNOP, optNOP, optSACKPerm, optLenSACKPerm)
	}
	if o.HasTimestamp {
		b = append(b, optTimestamp, optLenTimestamp)
		b = binary.BigEndian.AppendUint32(b, o.TSVal)
		b = binary.BigEndian.AppendUint32(b, o.TSEcr)
	}
	if o.HasWScale {
		b = append(b, optNOP, optWScale, optLenWScale, o.WScale)
	}
	if o.HasMD5 {
		b = append(append(b, optNOP, optNOP, optMD5, optLenMD5), o.MD5[:]...)
	}
	if k := o.sackBlocksToEncode(); k > 0 {
		b = append(b, optNOP, optNOP, optSACK, byte(2+optLenSACKBlock*k))
		for _, blk := range o.SACK[:k] {
			b = binary.BigEndian.AppendUint32(b, uint32(blk.Start))
			b = binary.BigEndian.AppendUint32(b, uint32(blk.End))
		}
	}
	b = o.appendFastOpen(b)
	for (len(b)-start)%4 != 0 {
		b = append(b, optEOL)
	}
	return b
}

// String renders options in packetdrill syntax in encoding order, e.g.
// "mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7", "nop,nop,TS val 5 ecr 6"
// or "nop,nop,sack 1:101 201:301"; empty when none. It shows what the
// encoder would write: unknown options and SACK blocks that do not fit are
// left out.
func (o *Options) String() string {
	return string(o.appendText(nil))
}

func (o *Options) appendText(b []byte) []byte {
	start := len(b)
	item := func(s string) {
		if len(b) > start {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	if o.HasMSS {
		item("mss ")
		b = strconv.AppendUint(b, uint64(o.MSS), 10)
	}
	switch {
	case o.HasTimestamp && o.SACKPermitted:
		item("sackOK")
	case o.HasTimestamp:
		item("nop")
		item("nop")
	case o.SACKPermitted:
		item("nop")
		item("nop")
		item("sackOK")
	}
	if o.HasTimestamp {
		item("TS val ")
		b = strconv.AppendUint(b, uint64(o.TSVal), 10)
		b = append(b, " ecr "...)
		b = strconv.AppendUint(b, uint64(o.TSEcr), 10)
	}
	if o.HasWScale {
		item("nop")
		item("wscale ")
		b = strconv.AppendUint(b, uint64(o.WScale), 10)
	}
	if o.HasMD5 {
		item("nop")
		item("nop")
		item("md5")
	}
	if k := o.sackBlocksToEncode(); k > 0 {
		item("nop")
		item("nop")
		item("sack")
		for _, blk := range o.SACK[:k] {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(blk.Start), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(blk.End), 10)
		}
	}
	if o.fastOpenLen(o.baseOptionsLen()) > 0 {
		item(o.fastOpenText())
	}
	return b
}
