package bridge

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseNetem(t *testing.T) {
	cases := []struct {
		spec    string
		want    NetemSpec
		wantErr string
	}{
		{"", NetemSpec{}, ""},
		{"loss 5%", NetemSpec{Loss: 0.05}, ""},
		{"delay 20ms reorder 10% loss 1.5%", NetemSpec{Loss: 0.015, Reorder: 0.1, Delay: 20 * time.Millisecond}, ""},
		{"loss 5", NetemSpec{}, "percentage"},
		{"loss 101%", NetemSpec{}, "percentage"},
		{"loss NaN%", NetemSpec{}, "percentage"},
		{"reorder 10%", NetemSpec{}, "needs a delay"},
		{"delay", NetemSpec{}, "needs a value"},
		{"delay 1h", NetemSpec{}, "not in"},
		{"duplicate 1%", NetemSpec{}, "not loss, delay or reorder"},
	}
	for _, tc := range cases {
		got, err := ParseNetem(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseNetem(%q): err %v, want %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseNetem(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

// TestNetemImpairs checks the user-space netem does what netem does: drops
// the given share, delays the rest, and sends the reordered share at once,
// ahead of delayed packets.
func TestNetemImpairs(t *testing.T) {
	spec, _ := ParseNetem("loss 5% delay 20ms reorder 10%")
	var mu sync.Mutex
	var got []int
	var dropped atomic.Uint64
	n := newNetem(spec, rand.New(rand.NewPCG(1, 2)), func(p []byte) {
		mu.Lock()
		got = append(got, int(p[0])<<8|int(p[1]))
		mu.Unlock()
	}, &dropped)
	defer n.stop()
	const total = 900 // under the delay queue's limit
	start := time.Now()
	for i := range total {
		n.send([]byte{byte(i >> 8), byte(i)})
	}
	mu.Lock()
	immediate := len(got)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k+int(dropped.Load()) == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Errorf("every packet arrived within %v, before the 20ms delay", time.Since(start))
	}
	mu.Lock()
	defer mu.Unlock()
	d := int(dropped.Load())
	if len(got)+d != total {
		t.Fatalf("%d delivered + %d dropped != %d sent", len(got), d, total)
	}
	if d < total*2/100 || d > total*9/100 {
		t.Errorf("dropped %d of %d, want about 5%%", d, total)
	}
	if immediate < total*5/100 || immediate > total*16/100 {
		t.Errorf("%d of %d sent at once, want about 10%% of the survivors", immediate, total)
	}
	reordered := 0
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			reordered++
		}
	}
	if reordered == 0 {
		t.Errorf("no packet overtook another")
	}
}

// FuzzParseNetem: whatever the spec, ParseNetem returns an error or a
// spec netem would accept (probabilities in [0, 1], a delay in [0, 10s],
// reorder only with a delay).
func FuzzParseNetem(f *testing.F) {
	for _, s := range []string{"", "loss 5%", "delay 20ms reorder 10% loss 1.5%", "reorder 10%", "delay", "loss 5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseNetem(spec)
		if err != nil {
			return
		}
		if !(s.Loss >= 0 && s.Loss <= 1) || !(s.Reorder >= 0 && s.Reorder <= 1) || s.Delay < 0 || s.Delay > 10*time.Second || (s.Reorder > 0 && s.Delay == 0) {
			t.Errorf("ParseNetem(%q) = %+v: out of netem's range", spec, s)
		}
	})
}
