package bridge

import (
	"fmt"
	"slices"
	"strings"
	"sync"
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
	var counts NetemCounts
	n := newNetem(spec, 0, 1, func(p []byte) {
		mu.Lock()
		got = append(got, int(p[0])<<8|int(p[1]))
		mu.Unlock()
	}, &counts, nil)
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
		if k+int(counts.Lost.Load()) == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Errorf("every packet arrived within %v, before the 20ms delay", time.Since(start))
	}
	mu.Lock()
	defer mu.Unlock()
	d := int(counts.Lost.Load())
	if l := counts.LimitDropped.Load(); l != 0 {
		t.Errorf("%d packets dropped by the limit, under it", l)
	}
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

// TestNetemSameSeedSameSequence: every direction seeded alike drops the
// same packet numbers, and the loss sequence does not depend on whether
// packets are also reordered or delayed.
func TestNetemSameSeedSameSequence(t *testing.T) {
	lostAt := func(spec string, seed uint64) []int {
		s, err := ParseNetem(spec)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[int]bool{}
		var counts NetemCounts
		n := newNetem(s, 4000, seed, func(p []byte) {
			mu.Lock()
			seen[int(p[0])<<8|int(p[1])] = true
			mu.Unlock()
		}, &counts, nil)
		const total = 2000
		for i := range total {
			n.send([]byte{byte(i >> 8), byte(i)})
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			k := len(seen)
			mu.Unlock()
			if k+int(counts.Lost.Load()) == total || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		n.stop()
		mu.Lock()
		defer mu.Unlock()
		var lost []int
		for i := range total {
			if !seen[i] {
				lost = append(lost, i)
			}
		}
		return lost
	}
	cases := []struct {
		name         string
		a, b         string
		seedA, seedB uint64
		same         bool
	}{
		{"two directions, one seed", "loss 5%", "loss 5%", 7, 7, true},
		{"with and without reordering", "loss 5% delay 1ms", "loss 5% delay 1ms reorder 10%", 7, 7, true},
		{"loss only and delayed", "loss 1%", "loss 1% delay 1ms", 3, 3, true},
		{"another seed", "loss 5%", "loss 5%", 7, 8, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := lostAt(tc.a, tc.seedA), lostAt(tc.b, tc.seedB)
			if len(a) == 0 {
				t.Fatalf("nothing lost with %q", tc.a)
			}
			if same := slices.Equal(a, b); same != tc.same {
				t.Errorf("%q seed %d lost %v; %q seed %d lost %v: same=%v, want %v", tc.a, tc.seedA, a, tc.b, tc.seedB, b, same, tc.same)
			}
		})
	}
}

// TestNetemLimit: past limit packets in the delay queue the rest are
// dropped, counted apart from the loss model's drops, and warned about
// once.
func TestNetemLimit(t *testing.T) {
	cases := []struct {
		limit, sent, wantDropped int
	}{
		{10, 15, 5},
		{0, DefaultNetemLimit + 3, 3}, // 0: netem's default
		{20, 15, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("limit %d, %d sent", tc.limit, tc.sent), func(t *testing.T) {
			var counts NetemCounts
			warned := 0
			n := newNetem(NetemSpec{Delay: time.Hour / 2}, tc.limit, 1, func([]byte) {}, &counts, func(int) { warned++ })
			defer n.stop()
			for range tc.sent {
				n.send([]byte{1})
			}
			// The release goroutine may hold one packet out of the queue.
			got := int(counts.LimitDropped.Load())
			if got != tc.wantDropped && got != tc.wantDropped-1 {
				t.Errorf("limit dropped %d, want %d", got, tc.wantDropped)
			}
			if counts.Lost.Load() != 0 {
				t.Errorf("the loss model dropped %d with no loss", counts.Lost.Load())
			}
			if int(counts.Passed.Load())+got != tc.sent {
				t.Errorf("passed %d + limit dropped %d != %d sent", counts.Passed.Load(), got, tc.sent)
			}
			if want := min(got, 1); warned != want {
				t.Errorf("warned %d times, want %d", warned, want)
			}
		})
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
