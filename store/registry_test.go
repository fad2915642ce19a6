package store

import (
	"errors"
	"testing"
)

type regLog struct{ name string }

// TestRegistry: reservations and open logs exclude one another by name;
// a closed registry refuses reservations and settlements and hands back
// the logs open at its close.
func TestRegistry(t *testing.T) {
	var r Registry[*regLog]
	a := &regLog{"a"}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"reserve an invalid name", func() error { return r.Reserve("A!") }, ErrInvalidName},
		{"reserve a", func() error { return r.Reserve("a") }, nil},
		{"reserve a again", func() error { return r.Reserve("a") }, ErrBusy},
		{"settle a open", func() error { return r.Settle("a", a) }, nil},
		{"reserve a while open", func() error { return r.Reserve("a") }, ErrBusy},
		{"forget another log named a", func() error { r.Forget("a", &regLog{"a"}); return r.Reserve("a") }, ErrBusy},
		{"forget a", func() error { r.Forget("a", a); return r.Reserve("a") }, nil},
		{"release a", func() error { return r.Settle("a", nil) }, nil},
		{"reserve b", func() error { return r.Reserve("b") }, nil},
		{"open a again", func() error { r.Reserve("a"); return r.Settle("a", a) }, nil},
		{"close", func() error {
			logs, err := r.Close()
			if err == nil && (len(logs) != 1 || logs[0] != a) {
				t.Errorf("Close returned %v, want [a] (the reservation of b is no log)", logs)
			}
			return err
		}, nil},
		{"settle b after close", func() error { return r.Settle("b", &regLog{"b"}) }, ErrClosed},
		{"reserve after close", func() error { return r.Reserve("c") }, ErrClosed},
		{"close again", func() error { _, err := r.Close(); return err }, ErrClosed},
	}
	for _, st := range steps {
		if err := st.do(); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.want)
		}
	}
	n := 0
	r.Range(func(string, *regLog) { n++ })
	if n != 1 {
		t.Errorf("Range saw %d logs, want 1", n)
	}
}
