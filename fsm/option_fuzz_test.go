package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// Fuzz targets for the inputs of issue 13 beyond the segment codec
// (FuzzParseSegment already round-trips every option): what the engine
// does with a Fast Open option and with a TCP-MD5 signature option it
// decodes, and ICMP errors arriving as whole IP packets. Seeds live in
// testdata/fuzz/<FuzzName>/.

// rawTCP builds a TCP segment from src to dst by hand, with opts as its
// option bytes exactly (padded with EOL to a multiple of 4, at most 40),
// so the fuzzer reaches the engine's option decoding undisturbed.
func rawTCP(src, dst netip.AddrPort, seq, ack Seq, flags Flags, opts, payload []byte) []byte {
	opts = opts[:min(len(opts), maxOptionLen)]
	ol := (len(opts) + 3) &^ 3
	b := make([]byte, MinHeaderLen+ol, MinHeaderLen+ol+len(payload))
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint32(b[4:], uint32(seq))
	binary.BigEndian.PutUint32(b[8:], uint32(ack))
	b[12] = byte((MinHeaderLen + ol) / 4 << 4)
	b[13] = byte(flags)
	binary.BigEndian.PutUint16(b[14:], 65535)
	copy(b[MinHeaderLen:], opts)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[16:], FoldChecksum(Checksum(b, PseudoHeaderSum(src.Addr(), dst.Addr(), len(b)))))
	return b
}

// ipv4Packet wraps a TCP segment in an IPv4 header.
func ipv4Packet(src, dst netip.Addr, tcp []byte) []byte {
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protoTCP, 0, 0}
	ip = append(ip, src.AsSlice()...)
	ip = append(ip, dst.AsSlice()...)
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
	binary.BigEndian.PutUint16(ip[10:], FoldChecksum(Checksum(ip, 0)))
	return append(ip, tcp...)
}

// deliverOK delivers a packet; the only error allowed is a *ParseError.
func deliverOK(t *testing.T, e *Engine, pkt []byte) bool {
	t.Helper()
	if err := e.Deliver(pkt); err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Deliver: %v is not a *ParseError", err)
		}
		return false
	}
	return true
}

// FuzzFastOpenOption: opts are the option bytes of (a) the SYN,ACK a Fast
// Open client gets after asking for a cookie and (b) a SYN with 5 bytes of
// data to a Fast Open listener. The engine never panics; the client caches
// a cookie only of a valid length (RFC 7413 §4.1.1: 4 to 16, even) and
// exactly as decoded; the listener takes the SYN's data before the
// handshake only with its own cookie for the client (§4.2.2).
func FuzzFastOpenOption(f *testing.F) {
	good := New(Config{}).FastOpenServerCookie(clientAddr.Addr(), serverAddr.Addr())
	f.Fuzz(func(t *testing.T, opts []byte) {
		// (a) The client.
		cfg := fixedConfig(100)
		cfg.FastOpenClient = true
		cli := New(cfg)
		if _, _, err := cli.ConnectFastOpen(clientAddr, serverAddr, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		cli.Ready()
		synAck := rawTCP(serverAddr, clientAddr, 300, 101, FlagSYN|FlagACK, opts, nil)
		parsed, perr := ParseSegment(synAck)
		if deliverOK(t, cli, ipv4Packet(serverAddr.Addr(), clientAddr.Addr(), synAck)) && perr == nil {
			ck, ok := cli.FastOpenCookie(serverAddr.Addr())
			o := parsed.Options
			switch {
			case ok && !ValidFastOpenCookie(len(ck)):
				t.Fatalf("cached a cookie of %d bytes", len(ck))
			case ok && (!o.FastOpen || !bytes.Equal(ck, cookieOf(o))):
				t.Fatalf("cached %x, the SYN,ACK carried %v %x", ck, o.FastOpen, cookieOf(o))
			case !ok && o.FastOpen && ValidFastOpenCookie(int(o.CookieLen)):
				t.Fatalf("a valid cookie of %d bytes was not cached", o.CookieLen)
			}
		}
		cli.Ready()

		// (b) The listener.
		cfg = fixedConfig(300)
		cfg.FastOpenServer = true
		srv := New(cfg)
		l, _ := srv.Listen(serverAddr, 0)
		srv.SetListenerFastOpen(l, true)
		srv.Ready()
		syn := rawTCP(clientAddr, serverAddr, 100, 0, FlagSYN, opts, []byte("hello"))
		parsed, perr = ParseSegment(syn)
		if !deliverOK(t, srv, ipv4Packet(clientAddr.Addr(), serverAddr.Addr(), syn)) || perr != nil {
			return
		}
		o := parsed.Options
		valid := o.FastOpen && bytes.Equal(cookieOf(o), good)
		id, err := srv.Accept(l)
		taken := err == nil && srv.Readable(id) == 5
		if taken != valid {
			t.Fatalf("data taken on the SYN %v, cookie valid %v (option %v %x)", taken, valid, o.FastOpen, cookieOf(o))
		}
		srv.Ready()
	})
}

// cookieOf is the cookie bytes an option holds (a longer option's cookie
// is counted in CookieLen but only 16 bytes are kept).
func cookieOf(o Options) []byte { return o.Cookie[:min(int(o.CookieLen), FastOpenCookieMax)] }

// FuzzMD5Option: opts are the option bytes of a SYN from a peer with a
// TCP-MD5 key (RFC 2385). Unsigned as sent, it is dropped as MD5_MISSING
// (no signature option found) or MD5_BAD (whatever digest the bytes hold),
// never processed; once signed with the key (when it has the option) it is
// never dropped for its signature, and one flipped payload bit is MD5_BAD.
func FuzzMD5Option(f *testing.F) {
	f.Fuzz(func(t *testing.T, opts, key []byte) {
		if len(key) == 0 || len(key) > 80 {
			return
		}
		engine := func() *Engine {
			e := New(fixedConfig(300))
			if err := e.SetMD5Key(clientAddr.Addr(), key); err != nil {
				t.Fatal(err)
			}
			e.Listen(serverAddr, 0)
			e.Ready()
			return e
		}
		md5Dropped := func(r Ready) bool {
			return hasCode(r.Explanations, CodeMD5Missing) || hasCode(r.Explanations, CodeMD5Bad)
		}
		syn := rawTCP(clientAddr, serverAddr, 100, 0, FlagSYN, opts, []byte("payload"))
		if _, err := ParseSegment(syn); err != nil {
			return
		}
		e := engine()
		if !deliverOK(t, e, ipv4Packet(clientAddr.Addr(), serverAddr.Addr(), syn)) {
			return
		}
		off := md5Offset(syn)
		r := e.Ready()
		want := CodeMD5Missing
		if off >= 0 {
			if syn[off-2] != optMD5 || syn[off-1] != optLenMD5 || off+16 > int(syn[12]>>4)*4 {
				t.Fatalf("md5Offset %d does not point into an MD5 option", off)
			}
			want = CodeMD5Bad
			if d := MD5Digest(clientAddr.Addr(), serverAddr.Addr(), syn, key); bytes.Equal(d[:], syn[off:off+16]) {
				return // the fuzzer signed it itself
			}
		}
		if !hasCode(r.Explanations, want) || len(r.Packets) != 0 {
			t.Fatalf("unsigned SYN: explanations %v, %d packets; want %s and no reply", r.Explanations, len(r.Packets), want)
		}
		if off < 0 {
			return
		}
		signed := bytes.Clone(syn)
		if !signTCP(clientAddr.Addr(), serverAddr.Addr(), signed, key) {
			t.Fatal("signTCP found no option that md5Offset found")
		}
		e = engine()
		deliverOK(t, e, ipv4Packet(clientAddr.Addr(), serverAddr.Addr(), signed))
		if r := e.Ready(); md5Dropped(r) {
			t.Fatalf("a correctly signed SYN was dropped: %v", r.Explanations)
		}
		signed[len(signed)-1] ^= 1
		binary.BigEndian.PutUint16(signed[16:], 0)
		binary.BigEndian.PutUint16(signed[16:], FoldChecksum(Checksum(signed, PseudoHeaderSum(clientAddr.Addr(), serverAddr.Addr(), len(signed)))))
		e = engine()
		deliverOK(t, e, ipv4Packet(clientAddr.Addr(), serverAddr.Addr(), signed))
		if r := e.Ready(); !hasCode(r.Explanations, CodeMD5Bad) {
			t.Fatalf("a SYN whose payload changed after signing was not MD5_BAD: %v", r.Explanations)
		}
	})
}

// FuzzICMPPacket: b is a whole IP packet (IPv4 or IPv6) carrying ICMP, as
// a TUN device or a pcap delivers it, to an engine with a connection in
// SYN-SENT and a half-open one in SYN-RECEIVED. Deliver never panics,
// fails only with a *ParseError, and a connection ends only when
// explained by a hard error rule.
func FuzzICMPPacket(f *testing.F) {
	cli := netip.AddrPortFrom(clientAddr.Addr(), 40001)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, _, ok := ICMPPacket(b); !ok {
			return // TCP input is FuzzEngine's
		}
		e := New(fixedConfig(300))
		// The client side of one connection (SYN-SENT, ISS 300) and the
		// server side of another (SYN-RECEIVED, ISS 300).
		if _, err := e.Connect(cli, serverAddr); err != nil {
			t.Fatal(err)
		}
		e.Listen(serverAddr, 0)
		e.Deliver(ipv4Packet(clientAddr.Addr(), serverAddr.Addr(), rawTCP(clientAddr, serverAddr, 100, 0, FlagSYN, nil, nil)))
		e.Ready()
		if !deliverOK(t, e, b) {
			return
		}
		r := e.Ready()
		for _, tr := range r.Transitions {
			if tr.To != Closed {
				continue
			}
			switch tr.Cause {
			case CodeICMPHardAbort, CodeICMPHardAbortBSD, CodeICMPSynRcvdDrop, CodeICMPSynRcvdAbort, CodeICMPSynRcvdBSDDrop:
			default:
				t.Fatalf("endpoint %d closed by %s on an ICMP packet", tr.Endpoint, tr.Cause)
			}
		}
	})
}
