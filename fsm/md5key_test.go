package fsm

import (
	"bytes"
	"net/netip"
	"testing"
)

// TestMD5KeyReturnsACopyOfTheKeySet: MD5Key gives back what SetMD5Key
// set (IPv4-mapped peers are the IPv4 ones), nil after removal, and a copy
// the caller may change.
func TestMD5KeyReturnsACopyOfTheKeySet(t *testing.T) {
	e := New(Config{})
	peer := netip.MustParseAddr("10.0.0.2")
	if k := e.MD5Key(peer); k != nil {
		t.Fatalf("no key set, got %q", k)
	}
	if err := e.SetMD5Key(peer, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.0.0.2", "::ffff:10.0.0.2"} {
		if k := e.MD5Key(netip.MustParseAddr(a)); !bytes.Equal(k, []byte("secret")) {
			t.Fatalf("MD5Key(%s) = %q", a, k)
		}
	}
	e.MD5Key(peer)[0] = 'X'
	if k := e.MD5Key(peer); string(k) != "secret" {
		t.Fatalf("changing the returned key changed the engine's: %q", k)
	}
	if err := e.SetMD5Key(peer, nil); err != nil {
		t.Fatal(err)
	}
	if k := e.MD5Key(peer); k != nil {
		t.Fatalf("removed key still there: %q", k)
	}
}
