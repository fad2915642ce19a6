package fsm

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// TestCloneContinuesIdentically runs the determinism script with both
// engines replaced by clones of themselves after every output batch: the
// transcript (every packet's bytes, transition, event, explanation and the
// final endpoint snapshots) must equal the run without clones.
func TestCloneContinuesIdentically(t *testing.T) {
	want := detScript(t, detConfig(1), detConfig(2))
	got := detScriptCloning(t, detConfig(1), detConfig(2), true)
	if !bytes.Equal(want, got) {
		t.Fatalf("going on as clones differs at %s", firstDifference(want, got))
	}
}

// TestCloneIsIndependent: what the original does after a clone is taken
// does not show in the clone, and the other way round.
func TestCloneIsIndependent(t *testing.T) {
	d, _, c, s := detConnect(t, detConfig(1), detConfig(2), false)
	_, err := d.cli.Send(c, []byte("held in the send buffer"))
	d.check(err)
	d.drain()
	d.wire = [2][][]byte{}

	snap := d.srv.Clone()
	var before bytes.Buffer
	recordEndpoints(&before, "server", snap)
	// The original reads, sends, closes and times out; the clone sees none of it.
	d.cli.Send(c, bytes.Repeat([]byte("x"), 3000))
	d.pump(0)
	buf := make([]byte, 100)
	d.srv.Receive(s, buf)
	d.check(d.srv.Close(s))
	d.pump(0)
	d.advance(10 * time.Second)
	var after bytes.Buffer
	recordEndpoints(&after, "server", snap)
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Fatalf("the clone changed with the original: %s", firstDifference(before.Bytes(), after.Bytes()))
	}
	// And the clone goes on by itself: it still has the connection open.
	if info, ok := snap.Endpoint(s); !ok || info.State != Established {
		t.Fatalf("the clone's connection: %+v %v", info, ok)
	}
	if _, err := snap.Send(s, []byte("from the clone")); err != nil {
		t.Fatal(err)
	}
	if r := snap.Ready(); len(r.Packets) == 0 {
		t.Fatal("the clone sent nothing")
	}
}

// TestCloneKnowsEveryField fails when conn or Engine gains a field that
// holds a reference (pointer, slice, map), so Clone is looked at again:
// a reference Clone does not copy would be shared between snapshots.
func TestCloneKnowsEveryField(t *testing.T) {
	known := map[string]bool{
		// conn: copied by conn.clone or fixed up by Engine.Clone.
		"conn.lq": true, "conn.parent": true, "conn.sndBuf": true, "conn.rcvBuf": true,
		"conn.ooo": true, "conn.synData": true, "conn.err": true,
		"conn.sack": true, "conn.rack": true, "conn.cc": true,
		// Engine: rebuilt by Clone, or scratch space a clone starts without.
		"Engine.conns": true, "Engine.last": true, "Engine.listeners": true, "Engine.byID": true,
		"Engine.timers": true, "Engine.closed": true, "Engine.ready": true, "Engine.arena": true,
		"Engine.scratch": true, "Engine.rcvSpare": true, "Engine.sndSpare": true,
		"Engine.retired": true, "Engine.free": true, "Engine.cfg": true, "Engine.tfoCache": true,
		"Engine.md5Keys": true, // copy on write (md5.go)
	}
	var refs func(t reflect.Type) bool
	refs = func(t reflect.Type) bool {
		if t.PkgPath() == "net/netip" {
			return false // immutable values (an Addr's zone is interned)
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func:
			return true
		case reflect.Struct:
			for i := range t.NumField() {
				if refs(t.Field(i).Type) {
					return true
				}
			}
		case reflect.Array:
			return refs(t.Elem())
		}
		return false
	}
	for _, v := range []any{conn{}, Engine{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if name := typ.Name() + "." + f.Name; refs(f.Type) && !known[name] {
				t.Errorf("%s (%s) holds a reference that Engine.Clone does not know: copy it there, then list it here", name, f.Type)
			}
		}
	}
}
