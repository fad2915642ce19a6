package machine

import (
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tcpstated/tcpstated/fsm"
	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestEventKindsMatchProto: outputs convert an fsm.EventKind to the
// proto enum by number, so every kind the engine has must be the proto
// value of the same name (an engine event the API has no name for
// would reach clients as a bare number).
func TestEventKindsMatchProto(t *testing.T) {
	for k := fsm.EventEstablished; ; k++ {
		name := k.String()
		if name == "UNKNOWN" {
			if int(k) < len(pb.EventKind_name) {
				t.Errorf("the proto has %s, the engine no kind %d", pb.EventKind(k), k)
			}
			return
		}
		if got := pb.EventKind(k).String(); got != "EVENT_KIND_"+name {
			t.Errorf("engine kind %d %s is %s in the proto", k, name, got)
		}
	}
}

// TestClearDigest: ClearDigest empties every field of a digest, so a
// field added to OutputDigest and not cleared fails here.
func TestClearDigest(t *testing.T) {
	d := &pb.OutputDigest{}
	r := d.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.IsList():
			l := r.Mutable(f).List()
			l.Append(l.NewElement())
		case f.Message() != nil:
			r.Mutable(f)
		case f.Kind() == protoreflect.Uint64Kind:
			r.Set(f, protoreflect.ValueOfUint64(7))
		default:
			t.Fatalf("field %s of a kind this test does not fill", f.Name())
		}
	}
	ClearDigest(d)
	if !proto.Equal(d, &pb.OutputDigest{}) {
		t.Fatalf("after ClearDigest: %v", d)
	}
}

// TestOneEvent: a digest with one event shares the slice of the last one
// while endpoint name and kind are the same, and gets a new one when
// either changes (an alias renames the endpoint).
func TestOneEvent(t *testing.T) {
	m := New("sessions/x", fsm.Config{})
	readable := fsm.Event{Endpoint: 2, Kind: fsm.EventDataReadable}
	tests := []struct {
		name   string
		before func()
		ev     fsm.Event
		same   bool // the slice of the step before
		want   string
	}{
		{"first", nil, readable, false, "sessions/x/endpoints/2"},
		{"again", nil, readable, true, "sessions/x/endpoints/2"},
		{"other kind", nil, fsm.Event{Endpoint: 2, Kind: fsm.EventPeerClosed}, false, "sessions/x/endpoints/2"},
		{"other endpoint", nil, fsm.Event{Endpoint: 3, Kind: fsm.EventPeerClosed}, false, "sessions/x/endpoints/3"},
		{"renamed", func() { m.addAlias("web", 3) }, fsm.Event{Endpoint: 3, Kind: fsm.EventPeerClosed}, false, "sessions/x/endpoints/web"},
	}
	var prev []*pb.Event
	for _, tt := range tests {
		if tt.before != nil {
			tt.before()
		}
		evs := m.oneEvent(tt.ev)
		if len(evs) != 1 || cap(evs) != 1 || evs[0].Endpoint != tt.want || evs[0].Kind != pb.EventKind(tt.ev.Kind) {
			t.Fatalf("%s: %v (cap %d), want one %s on %s", tt.name, evs, cap(evs), pb.EventKind(tt.ev.Kind), tt.want)
		}
		if same := prev != nil && &prev[0] == &evs[0]; same != tt.same {
			t.Errorf("%s: shares the last slice %t, want %t", tt.name, same, tt.same)
		}
		prev = evs
	}
}

// TestEngineNamesAreUTF8: every state and cause name the engine has is
// valid UTF-8, which NamesValid promises for the digests' records.
func TestEngineNamesAreUTF8(t *testing.T) {
	for s := range 256 {
		if n := fsm.State(s).String(); !utf8.ValidString(n) {
			t.Errorf("state %d: %q", s, n)
		}
	}
	for c := range 1 << 16 {
		if n := fsm.Code(c).String(); !utf8.ValidString(n) {
			t.Errorf("code %d: %q", c, n)
		}
	}
	if !New("sessions/x", fsm.Config{}).NamesValid() || New("sessions/\xff", fsm.Config{}).NamesValid() {
		t.Errorf("NamesValid does not follow the session name")
	}
}
