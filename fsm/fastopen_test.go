package fsm

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// TCP Fast Open (RFC 7413): the option codec, the server's cookie and SYN
// data, the client's cookie cache, and both roles against each other.

// tfoConfig is fixedConfig with both Fast Open roles on.
func tfoConfig(isn uint32) Config {
	c := fixedConfig(isn)
	c.FastOpenClient, c.FastOpenServer = true, true
	return c
}

func hasCode(xs []Explanation, code Code) bool {
	for i := range xs {
		if xs[i].Code == code {
			return true
		}
	}
	return false
}

// TestFastOpenOptionCodec: kind 34 and kind 254 (magic 0xF989) are read
// with any cookie length, written back in the same form with EOL padding,
// and shown in packetdrill's syntax.
func TestFastOpenOptionCodec(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte // option bytes as on the wire
		fo, exp bool
		n       int
		text    string // Options.String()
		enc     []byte // re-encoded option bytes (nil: same as raw, padded)
	}{
		{"cookie request", []byte{34, 2, 0, 0}, true, false, 0, "FO", nil},
		{"8-byte cookie", []byte{34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0}, true, false, 8, "FO 0102030405060708", nil},
		{"odd cookie kept for the engine to judge", []byte{34, 3, 9, 0}, true, false, 1, "FO 09", nil},
		{"experimental request", []byte{254, 4, 0xF9, 0x89}, true, true, 0, "FOEXP", nil},
		{"experimental 4-byte cookie", []byte{254, 8, 0xF9, 0x89, 1, 2, 3, 4}, true, true, 4, "FOEXP 01020304", nil},
		{"experimental option of another ExID is unknown", []byte{254, 4, 0x12, 0x34}, false, false, 0, "", []byte{}},
		{"38-byte cookie: bytes past 16 written as zeros", append([]byte{34, 40}, bytes.Repeat([]byte{7}, 38)...), true, false, 38, "",
			append(append([]byte{34, 40}, bytes.Repeat([]byte{7}, 16)...), make([]byte, 22)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Options
			if err := parseOptions(tt.raw, &o); err != nil {
				t.Fatal(err)
			}
			if o.FastOpen != tt.fo || o.FastOpenExp != tt.exp || int(o.CookieLen) != tt.n {
				t.Fatalf("parsed FastOpen=%v exp=%v len=%d, want %v %v %d", o.FastOpen, o.FastOpenExp, o.CookieLen, tt.fo, tt.exp, tt.n)
			}
			if tt.text != "" && o.String() != tt.text {
				t.Errorf("String() = %q, want %q", o.String(), tt.text)
			}
			want := tt.enc
			if want == nil {
				want = tt.raw
			}
			got := appendOptions(nil, &o)
			if !bytes.Equal(got, want) || len(got) != o.optionsLen() {
				t.Fatalf("encoded % x (optionsLen %d), want % x", got, o.optionsLen(), want)
			}
			var back Options
			if err := parseOptions(got, &back); err != nil {
				t.Fatal(err)
			}
			back.Unknown, o.Unknown = 0, 0
			if back != o {
				t.Fatalf("round trip: %+v, want %+v", back, o)
			}
		})
	}
}

// TestFastOpenOptionDoesNotFit: beside MSS, TS, SACK-permitted and window
// scale (20 bytes) a 38-byte cookie cannot be written; it is left out, never
// past 40 bytes.
func TestFastOpenOptionDoesNotFit(t *testing.T) {
	o := Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, HasWScale: true}
	o.setFastOpen(make([]byte, 38), false)
	if o.FastOpenFits() {
		t.Fatal("FastOpenFits: a 40-byte option beside 20 bytes of others")
	}
	if n := len(appendOptions(nil, &o)); n != 20 || o.optionsLen() != 20 {
		t.Fatalf("encoded %d bytes (optionsLen %d), want 20", n, o.optionsLen())
	}
	o.setFastOpen(make([]byte, 16), false)
	if n := len(appendOptions(nil, &o)); n != 40 {
		t.Fatalf("with a 16-byte cookie: %d bytes, want 40", n)
	}
}

// TestFastOpenServerCookieDeterministic: the cookie depends on the secret
// and the client's address only (RFC 7413 §4.1.2), so a replayed session
// gives the same one.
func TestFastOpenServerCookieDeterministic(t *testing.T) {
	a, b := New(Config{Secret: [16]byte{1}}), New(Config{Secret: [16]byte{1}})
	other := New(Config{Secret: [16]byte{2}})
	cl, cl2, srv := clientAddr.Addr(), netip.MustParseAddr("10.0.0.3"), serverAddr.Addr()
	if !bytes.Equal(a.FastOpenServerCookie(cl, srv), b.FastOpenServerCookie(cl, srv)) {
		t.Fatal("same secret and client, different cookies")
	}
	if len(a.FastOpenServerCookie(cl, srv)) != FastOpenServerCookieLen {
		t.Fatal("cookie length")
	}
	if bytes.Equal(a.FastOpenServerCookie(cl, srv), a.FastOpenServerCookie(cl2, srv)) {
		t.Fatal("two clients share a cookie")
	}
	if bytes.Equal(a.FastOpenServerCookie(cl, srv), other.FastOpenServerCookie(cl, srv)) {
		t.Fatal("two secrets give the same cookie")
	}
}

// synWith builds the client's SYN (ISS 100) to serverAddr with a Fast
// Open option and data.
func synWith(cookie []byte, request bool, data string) Packet {
	s := Segment{SrcPort: clientAddr.Port(), DstPort: serverAddr.Port(), Seq: 100, Flags: FlagSYN, Window: 65535,
		Options: Options{HasMSS: true, MSS: 1460}, Payload: []byte(data)}
	if request || cookie != nil {
		s.Options.setFastOpen(cookie, false)
	}
	return Packet{Data: AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &s)}
}

// TestFastOpenServer: what a listener does with each kind of SYN (RFC 7413
// §4.1.2, §4.2.2).
func TestFastOpenServer(t *testing.T) {
	good := New(Config{}).FastOpenServerCookie(clientAddr.Addr(), serverAddr.Addr())
	tests := []struct {
		name       string
		serverOn   bool // switch fastopen.server_enable
		listenerOn bool // SetListenerFastOpen
		cookie     []byte
		request    bool
		data       string
		synAck     string // summary of the SYN,ACK
		giveCookie bool   // the SYN,ACK carries the client's cookie
		readable   string // what the application reads before the handshake completes
		code       Code
	}{
		{"cookie request", true, true, nil, true, "", "S. seq=300 ack=101", true, "", CodeFastOpenCookieSent},
		{"valid cookie with data", true, true, good, false, "hello", "S. seq=300 ack=106", false, "hello", CodeFastOpenCookieValid},
		{"valid cookie without data", true, true, good, false, "", "S. seq=300 ack=101", false, "", CodeFastOpenCookieValid},
		{"invalid cookie: data dropped, ISN acknowledged", true, true, []byte{1, 2, 3, 4, 5, 6, 7, 8}, false, "hello", "S. seq=300 ack=101", true, "", CodeFastOpenCookieInvalid},
		{"cookie of the wrong length", true, true, []byte{1, 2, 3, 4}, false, "hello", "S. seq=300 ack=101", true, "", CodeFastOpenCookieInvalid},
		{"server role off", false, true, good, false, "hello", "S. seq=300 ack=101", false, "", CodeFastOpenServerOff},
		{"listener did not ask", true, false, good, false, "hello", "S. seq=300 ack=101", false, "", CodeFastOpenServerOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fixedConfig(300)
			cfg.FastOpenServer = tt.serverOn
			srv := newSide(t, "server", cfg)
			l, err := srv.e.Listen(serverAddr, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.e.SetListenerFastOpen(l, tt.listenerOn); err != nil {
				t.Fatal(err)
			}
			srv.deliver(synWith(tt.cookie, tt.request, tt.data))
			r := srv.collect()
			if !hasCode(r.Explanations, tt.code) {
				t.Errorf("no %s explanation", tt.code)
			}
			sa := srv.expect(tt.synAck)
			o := sa.Segment.Options
			if o.FastOpen != tt.giveCookie {
				t.Fatalf("SYN,ACK Fast Open option %v, want %v", o.FastOpen, tt.giveCookie)
			}
			if tt.giveCookie && !bytes.Equal(o.Cookie[:o.CookieLen], good) {
				t.Fatalf("SYN,ACK cookie %x, want %x", o.Cookie[:o.CookieLen], good)
			}
			id, err := srv.e.Accept(l)
			if tt.code != CodeFastOpenCookieValid { // only a valid cookie makes the connection acceptable at once
				if err == nil {
					t.Fatal("a connection to accept before the handshake completed")
				}
				return
			}
			if err != nil {
				t.Fatalf("accept before the handshake completes: %v", err)
			}
			srv.wantState(id, SynReceived)
			buf := make([]byte, 16)
			n, _ := srv.e.Receive(id, buf)
			if string(buf[:n]) != tt.readable {
				t.Fatalf("read %q before the handshake, want %q", buf[:n], tt.readable)
			}
			// The third ACK completes the handshake; nothing is delivered twice.
			ack := Segment{SrcPort: clientAddr.Port(), DstPort: serverAddr.Port(), Seq: 106, Ack: 301, Flags: FlagACK, Window: 65535}
			srv.deliver(Packet{Data: AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &ack)})
			srv.wantState(id, Established)
			if n, _ := srv.e.Receive(id, buf); n != 0 {
				t.Fatalf("read %q again after the handshake", buf[:n])
			}
		})
	}
}

// synAckWith builds the server's SYN,ACK (ISS 300) acknowledging ack, with
// an optional Fast Open option.
func synAckWith(ack Seq, fo bool, cookie []byte) Packet {
	s := Segment{SrcPort: serverAddr.Port(), DstPort: clientAddr.Port(), Seq: 300, Ack: ack, Flags: FlagSYN | FlagACK, Window: 65535,
		Options: Options{HasMSS: true, MSS: 1460}}
	if fo {
		s.Options.setFastOpen(cookie, false)
	}
	return Packet{Data: AppendPacket(nil, serverAddr.Addr(), clientAddr.Addr(), &s)}
}

// TestFastOpenClient: the client's cookie cache and what the next SYN is
// after each kind of SYN,ACK (RFC 7413 §4.1.3, §4.1.3.1, §4.2). The first
// connection holds the cached cookie (or none) and sends "hello".
func TestFastOpenClient(t *testing.T) {
	tests := []struct {
		name     string
		cached   bool   // a cookie (old) is cached before the connection
		syn      string // the first SYN
		ackData  bool   // the SYN,ACK acknowledges the SYN's data
		foInAck  bool
		cookie   []byte
		after    string // what the client sends on the SYN,ACK
		code     Code
		next     string // the next connection's SYN summary
		nextFO   string // its option ("" none)
		nextData bool
	}{
		{"request answered with a cookie", false, "S seq=100", false, true, []byte{9, 9, 9, 9}, "P. seq=101 ack=301 len=5", CodeFastOpenCookieCached, "S seq=100 len=5", "FO 09090909", true},
		{"request answered without the option", false, "S seq=100", false, false, nil, "P. seq=101 ack=301 len=5", CodeFastOpenServerNoTFO, "S seq=100", "", false},
		{"request answered with an odd cookie", false, "S seq=100", false, true, []byte{1, 2, 3, 4, 5}, "P. seq=101 ack=301 len=5", CodeFastOpenServerNoTFO, "S seq=100", "", false},
		{"request answered with a 2-byte cookie", false, "S seq=100", false, true, []byte{1, 2}, "P. seq=101 ack=301 len=5", CodeFastOpenServerNoTFO, "S seq=100", "", false},
		{"data acknowledged, no new cookie", true, "S seq=100 len=5", true, false, nil, ". seq=106 ack=301", CodeFastOpenDataAcked, "S seq=100 len=5", "FO 0102030405060708", true},
		{"data acknowledged, new cookie", true, "S seq=100 len=5", true, true, []byte{5, 5, 5, 5, 5, 5}, ". seq=106 ack=301", CodeFastOpenCookieCached, "S seq=100 len=5", "FO 050505050505", true},
		{"data acknowledged, invalid update ignored", true, "S seq=100 len=5", true, true, []byte{1}, ". seq=106 ack=301", CodeFastOpenCookieIgnored, "S seq=100 len=5", "FO 0102030405060708", true},
		{"data rejected, new cookie", true, "S seq=100 len=5", false, true, []byte{2, 2, 2, 2}, "P. seq=101 ack=301 len=5", CodeFastOpenDataNotAcked, "S seq=100 len=5", "FO 02020202", true},
		{"data rejected, no cookie: Fast Open off for the server", true, "S seq=100 len=5", false, false, nil, "P. seq=101 ack=301 len=5", CodeFastOpenServerNoTFO, "S seq=100", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli := newSide(t, "client", tfoConfig(100))
			if tt.cached {
				cli.e.tfoCache = map[netip.Addr]fastOpenEntry{serverAddr.Addr(): {n: 8, cookie: [16]byte{1, 2, 3, 4, 5, 6, 7, 8}}}
			}
			c, n, err := cli.e.ConnectFastOpen(clientAddr, serverAddr, []byte("hello"))
			if err != nil || n != 5 {
				t.Fatalf("ConnectFastOpen: %d, %v", n, err)
			}
			syn := cli.expect(tt.syn)
			if !syn.Segment.Options.FastOpen {
				t.Fatal("first SYN without the Fast Open option")
			}
			ack := Seq(101)
			if tt.ackData {
				ack = 106
			}
			cli.deliver(synAckWith(ack, tt.foInAck, tt.cookie))
			r := cli.collect()
			if !hasCode(r.Explanations, tt.code) {
				var got []string
				for i := range r.Explanations {
					got = append(got, r.Explanations[i].Code.String())
				}
				t.Errorf("no %s explanation; got %s", tt.code, strings.Join(got, " "))
			}
			cli.expect(tt.after)
			cli.expectNothing()
			cli.wantState(c, Established)
			// The next connection, from another port.
			next := netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+1)
			if _, _, err := cli.e.ConnectFastOpen(next, serverAddr, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			s2 := cli.expect(tt.next)
			o := s2.Segment.Options
			got := ""
			if o.FastOpen {
				got = o.fastOpenText()
			}
			if got != tt.nextFO {
				t.Fatalf("next SYN's option %q, want %q", got, tt.nextFO)
			}
		})
	}
}

// TestFastOpenClientOff: with fastopen.client_enable=0 a connect with data
// is a plain one: no option, data after the handshake, carried by the ACK.
func TestFastOpenClientOff(t *testing.T) {
	cli := newSide(t, "client", fixedConfig(100))
	if _, _, err := cli.e.ConnectFastOpen(clientAddr, serverAddr, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := cli.collect()
	if !hasCode(r.Explanations, CodeFastOpenClientOff) {
		t.Error("no FASTOPEN_CLIENT_OFF explanation")
	}
	if syn := cli.expect("S seq=100"); syn.Segment.Options.FastOpen {
		t.Fatal("option sent with the client role off")
	}
	cli.deliver(synAckWith(101, false, nil))
	cli.expect("P. seq=101 ack=301 len=5")
}

// TestFastOpenEndToEnd: a client and a server engine, both roles on: the
// first connection gets a cookie, the second's data arrives on the SYN and
// is read by the server before the handshake completes.
func TestFastOpenEndToEnd(t *testing.T) {
	cli := newSide(t, "client", tfoConfig(100))
	srv := newSide(t, "server", tfoConfig(300))
	l, _ := srv.e.Listen(serverAddr, 0)
	if err := srv.e.SetListenerFastOpen(l, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli.e.ConnectFastOpen(clientAddr, serverAddr, []byte("first")); err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, "S seq=100")
	relay(srv, cli, "S. seq=300 ack=101")
	relay(cli, srv, "P. seq=101 ack=301 len=5")
	pump(cli, srv)
	if _, err := srv.e.Accept(l); err != nil {
		t.Fatal(err)
	}
	want := srv.e.FastOpenServerCookie(clientAddr.Addr(), serverAddr.Addr())
	if got, ok := cli.e.FastOpenCookie(serverAddr.Addr()); !ok || !bytes.Equal(got, want) {
		t.Fatalf("client cached %x, want %x", got, want)
	}
	second := netip.AddrPortFrom(clientAddr.Addr(), clientAddr.Port()+1)
	if _, _, err := cli.e.ConnectFastOpen(second, serverAddr, []byte("0-RTT")); err != nil {
		t.Fatal(err)
	}
	relay(cli, srv, "S seq=100 len=5")
	// Accept and read before the client's ACK of the SYN,ACK arrives.
	id, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	srv.wantState(id, SynReceived)
	buf := make([]byte, 8)
	if n, _ := srv.e.Receive(id, buf); string(buf[:n]) != "0-RTT" {
		t.Fatalf("server read %q before the handshake, want 0-RTT", buf[:n])
	}
	relay(srv, cli, "S. seq=300 ack=106")
	relay(cli, srv, ". seq=106 ack=301")
	srv.wantState(id, Established)
}

// TestFastOpenSynRetransmitKeepsData: a retransmitted SYN carries the
// cookie and the data again, and a SYN,ACK that acknowledges them is
// accepted.
func TestFastOpenSynRetransmitKeepsData(t *testing.T) {
	cli := newSide(t, "client", tfoConfig(100))
	cli.e.tfoCache = map[netip.Addr]fastOpenEntry{serverAddr.Addr(): {n: 4, cookie: [16]byte{1, 2, 3, 4}}}
	c, _, err := cli.e.ConnectFastOpen(clientAddr, serverAddr, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	cli.expect("S seq=100 len=5")
	next, ok := cli.e.NextDeadline()
	if !ok {
		t.Fatal("no SYN retransmission timer")
	}
	cli.e.AdvanceTo(next)
	if syn := cli.expect("S seq=100 len=5"); !syn.Segment.Options.FastOpen {
		t.Fatal("retransmitted SYN without the cookie")
	}
	cli.deliver(synAckWith(106, false, nil))
	cli.expect(". seq=106 ack=301")
	cli.wantState(c, Established)
}
