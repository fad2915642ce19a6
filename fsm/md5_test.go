package fsm

import (
	"errors"
	"testing"
)

// Tests of TCP-MD5 (RFC 2385, md5.go).

// md5Pair makes a client and a server with the given keys for each other
// ("" for none).
func md5Pair(t *testing.T, cliKey, srvKey string) (cli, srv *side) {
	cli, srv = newSide(t, "client", fixedConfig(100)), newSide(t, "server", fixedConfig(300))
	if cliKey != "" {
		if err := cli.e.SetMD5Key(serverAddr.Addr(), []byte(cliKey)); err != nil {
			t.Fatal(err)
		}
	}
	if srvKey != "" {
		if err := srv.e.SetMD5Key(clientAddr.Addr(), []byte(srvKey)); err != nil {
			t.Fatal(err)
		}
	}
	return cli, srv
}

// wantSigned checks that a packet carries a signature that verifies.
func wantSigned(t *testing.T, p Packet, key string) {
	t.Helper()
	_, _, tcp, err := ParsePacket(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Segment.Options.HasMD5 {
		t.Fatalf("%s carries no MD5 option", segSummary(&p.Segment))
	}
	if MD5Digest(p.Src, p.Dst, tcp, []byte(key)) != p.Segment.Options.MD5 {
		t.Fatalf("%s: the signature does not verify", segSummary(&p.Segment))
	}
	if !TCPChecksumValid(p.Src, p.Dst, tcp) {
		t.Fatal("the checksum is wrong after signing")
	}
}

// TestMD5SignedConnection: two engines with the same key open, carry data
// and every segment both ways is signed; the option's 20 bytes come out
// of each segment's payload (RFC 2385 §4.0).
func TestMD5SignedConnection(t *testing.T) {
	cli, srv := md5Pair(t, "bgp-secret", "bgp-secret")
	l, _ := srv.e.Listen(serverAddr, 0)
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	wantSigned(t, relay(cli, srv, "S seq=100"), "bgp-secret")
	wantSigned(t, relay(srv, cli, "S. seq=300 ack=101"), "bgp-secret")
	wantSigned(t, relay(cli, srv, ". seq=101 ack=301"), "bgp-secret")
	s, err := srv.e.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.e.Send(c, make([]byte, 3000)); err != nil {
		t.Fatal(err)
	}
	p := relay(cli, srv, ". seq=101 ack=301 len=1440")
	wantSigned(t, p, "bgp-secret")
	srv.collect()
	if got := srv.e.Readable(s); got != 1440 {
		t.Fatalf("server has %d bytes, want 1440", got)
	}
	if got := cli.e.byID[c].effMSS(); got != 1440 {
		t.Fatalf("effective MSS %d, want 1460 - 20", got)
	}
}

// TestMD5UnsignedOrBadSegmentsDropped: a peer with a key refuses segments
// without a signature (MD5_MISSING) or with a wrong one (MD5_BAD),
// without a reply, before any other processing: a SYN opens nothing,
// and a RST resets nothing.
func TestMD5UnsignedOrBadSegmentsDropped(t *testing.T) {
	for _, tc := range []struct {
		name, cliKey string
		want         Code
	}{
		{"no signature", "", CodeMD5Missing},
		{"wrong key", "other", CodeMD5Bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := md5Pair(t, tc.cliKey, "bgp-secret")
			srv.e.Listen(serverAddr, 0)
			srv.collect()
			cli.e.Connect(clientAddr, serverAddr)
			syn := cli.expect("S seq=100")
			srv.deliver(syn)
			r := srv.collect()
			if !hasExplanation(r, tc.want) {
				t.Fatalf("explanations %v, want %s", r.Explanations, tc.want)
			}
			if len(r.Explanations) != 1 || r.Explanations[0].Action != ActionDropped || r.Explanations[0].Section() != secMD5 {
				t.Fatalf("explanations %v: want only the drop", r.Explanations)
			}
			srv.expectNothing()
			if n := len(srv.e.Endpoints()); n != 1 {
				t.Fatalf("%d endpoints, want the listener only", n)
			}
		})
	}
}

// TestMD5EstablishedRstNeedsSignature: on an established signed
// connection a RST without a signature is dropped (RFC 2385's purpose:
// forged resets against BGP sessions) and the connection stays.
func TestMD5EstablishedRstNeedsSignature(t *testing.T) {
	cli, srv := md5Pair(t, "k", "k")
	l, _ := srv.e.Listen(serverAddr, 0)
	c, _ := cli.e.Connect(clientAddr, serverAddr)
	relay(cli, srv, "S seq=100")
	relay(srv, cli, "S. seq=300 ack=101")
	relay(cli, srv, ". seq=101 ack=301")
	srv.e.Accept(l)
	rst := Segment{SrcPort: serverAddr.Port(), DstPort: clientAddr.Port(), Seq: 301, Flags: FlagRST}
	if err := cli.e.Deliver(AppendPacket(nil, serverAddr.Addr(), clientAddr.Addr(), &rst)); err != nil {
		t.Fatal(err)
	}
	if r := cli.collect(); !hasExplanation(r, CodeMD5Missing) {
		t.Fatal("the forged RST was not explained as MD5_MISSING")
	}
	cli.wantState(c, Established)
	// The same RST signed with the key resets the connection.
	rst.Options.HasMD5 = true
	pkt := AppendPacket(nil, serverAddr.Addr(), clientAddr.Addr(), &rst)
	if !SignMD5(pkt, []byte("k")) {
		t.Fatal("SignMD5 found no option")
	}
	if err := cli.e.Deliver(pkt); err != nil {
		t.Fatal(err)
	}
	cli.collect()
	cli.wantState(c, Closed)
}

// TestMD5OptionCodec: kind 19 must be 18 bytes; it round-trips and takes
// NOP, NOP and 18 bytes in the encoding.
func TestMD5OptionCodec(t *testing.T) {
	o := Options{HasMD5: true, HasTimestamp: true, TSVal: 1, TSEcr: 2}
	o.MD5[0], o.MD5[15] = 0xaa, 0xbb
	s := Segment{SrcPort: 1, DstPort: 2, Flags: FlagACK, Options: o}
	pkt := AppendPacket(nil, clientAddr.Addr(), serverAddr.Addr(), &s)
	_, _, tcp, _ := ParsePacket(pkt)
	got, err := ParseSegment(tcp)
	if err != nil || !got.Options.HasMD5 || got.Options.MD5 != o.MD5 || len(tcp) != 20+12+20 {
		t.Fatalf("round trip: %+v, %v (%d header bytes)", got.Options, err, len(tcp))
	}
	if want := "nop,nop,TS val 1 ecr 2,nop,nop,md5"; got.Options.String() != want {
		t.Errorf("String = %q, want %q", got.Options.String(), want)
	}
	bad := append([]byte(nil), tcp...)
	bad[20+12+3] = 10
	var pe *ParseError
	if _, err := ParseSegment(bad); !errors.As(err, &pe) || pe.Field != "md5 signature length" {
		t.Fatalf("kind 19 length 10: %v", err)
	}
	if err := New(Config{}).SetMD5Key(clientAddr.Addr(), make([]byte, 81)); err == nil {
		t.Error("an 81-byte key was taken")
	}
}
