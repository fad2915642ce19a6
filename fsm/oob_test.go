package fsm

import (
	"errors"
	"testing"
)

// oobPair is defaultPair with switch oob_inline set on the server.
func oobPair(t *testing.T, inline string) (*side, EndpointID) {
	t.Helper()
	cfg := fixedConfig(300)
	if err := cfg.SetSwitch("oob_inline", inline); err != nil {
		t.Fatal(err)
	}
	_, srv, _, s := established(t, fixedConfig(100), cfg)
	return srv, s
}

// TestUrgentOutOfBand: "ab!rest" with the urgent pointer after '!'.
// oob_inline=1 (rfc, RFC 6093 §5) reads it all in line and recv(MSG_OOB)
// has nothing; oob_inline=0 (BSD sockets without SO_OOBINLINE) stops the
// read at the mark, gives '!' once out of band and skips it in the stream.
func TestUrgentOutOfBand(t *testing.T) {
	seg := Segment{Flags: FlagACK | FlagURG, Seq: 101, Ack: 301, Window: 65535, Urgent: 3, Payload: []byte("ab!rest")}
	t.Run("oob_inline=1", func(t *testing.T) {
		srv, s := oobPair(t, "1")
		srv.inject(clientAddr, serverAddr, seg)
		if r := srv.collect(); hasExplanation(r, CodeUrgentOutOfBand) {
			t.Fatal("URGENT_OUT_OF_BAND with oob_inline=1")
		}
		if _, err := srv.e.ReceiveUrgent(s, false); !errors.Is(err, ErrNoUrgent) {
			t.Fatalf("ReceiveUrgent = %v, want ErrNoUrgent (in line)", err)
		}
		if n := srv.e.Readable(s); n != 7 {
			t.Fatalf("Readable = %d, want 7", n)
		}
		mustRead(t, srv, s, "ab!rest")
	})
	t.Run("oob_inline=0", func(t *testing.T) {
		srv, s := oobPair(t, "0")
		srv.inject(clientAddr, serverAddr, seg)
		wantExplanation(t, srv.collect(), CodeUrgentOutOfBand)
		if n := srv.e.Readable(s); n != 6 {
			t.Fatalf("Readable = %d, want 6 (the urgent octet is out of band)", n)
		}
		if at, _ := srv.e.AtMark(s); at {
			t.Fatal("at the mark before reading")
		}
		mustRead(t, srv, s, "ab") // the read stops at the mark
		if at, _ := srv.e.AtMark(s); !at {
			t.Fatal("not at the mark after reading what precedes it")
		}
		if b, err := srv.e.ReceiveUrgent(s, true); err != nil || b != '!' {
			t.Fatalf("ReceiveUrgent(peek) = %q, %v", b, err)
		}
		if b, err := srv.e.ReceiveUrgent(s, false); err != nil || b != '!' {
			t.Fatalf("ReceiveUrgent = %q, %v", b, err)
		}
		if _, err := srv.e.ReceiveUrgent(s, false); !errors.Is(err, ErrNoUrgent) {
			t.Fatalf("second ReceiveUrgent = %v, want ErrNoUrgent", err)
		}
		mustRead(t, srv, s, "rest")
		if at, _ := srv.e.AtMark(s); at {
			t.Fatal("at the mark after reading past it")
		}
	})
	t.Run("oob_inline=0, read past unread", func(t *testing.T) {
		srv, s := oobPair(t, "0")
		srv.inject(clientAddr, serverAddr, seg)
		mustRead(t, srv, s, "ab")
		mustRead(t, srv, s, "rest") // skips '!'
		if _, err := srv.e.ReceiveUrgent(s, false); !errors.Is(err, ErrNoUrgent) {
			t.Fatalf("ReceiveUrgent after reading past = %v, want ErrNoUrgent", err)
		}
	})
	t.Run("oob_inline=0, not yet arrived", func(t *testing.T) {
		srv, s := oobPair(t, "0")
		srv.inject(clientAddr, serverAddr, Segment{Flags: FlagACK | FlagURG, Seq: 101, Ack: 301, Window: 65535, Urgent: 300, Payload: []byte("abcd")})
		if _, err := srv.e.ReceiveUrgent(s, false); !errors.Is(err, ErrUrgentNotYet) {
			t.Fatalf("ReceiveUrgent = %v, want ErrUrgentNotYet", err)
		}
		mustRead(t, srv, s, "abcd")
	})
	t.Run("oob_inline=0, SO_OOBINLINE on the socket", func(t *testing.T) {
		srv, s := oobPair(t, "0")
		o, _ := srv.e.SockOpts(s)
		o.OOBInline = true
		if err := srv.e.SetSockOpts(s, o); err != nil {
			t.Fatal(err)
		}
		srv.inject(clientAddr, serverAddr, seg)
		mustRead(t, srv, s, "ab!rest")
	})
}

// TestOOBInlineProfiles: rfc keeps urgent data in line; freebsd and linux
// take it out of band.
func TestOOBInlineProfiles(t *testing.T) {
	for name, want := range map[string]string{"rfc": "1", "freebsd": "0", "linux": "0"} {
		p, _ := ProfileByName(name)
		var c Config
		if err := p.Apply(&c); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Switch("oob_inline"); got != want {
			t.Errorf("%s: oob_inline = %s, want %s", name, got, want)
		}
	}
}
