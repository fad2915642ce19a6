package bench

import (
	"strings"
	"testing"
	"time"
)

func TestLoadCPUPerOp(t *testing.T) {
	for _, c := range []struct {
		ops       int64
		cpu, idle time.Duration
		want      float64
	}{
		{0, time.Second, 0, 0},
		{1000, 100 * time.Millisecond, 0, 100},
		{1000, 100 * time.Millisecond, 20 * time.Millisecond, 80},
	} {
		r := result{ops: c.ops, serverCPU: c.cpu, idleCPU: c.idle}
		if got := r.loadCPUPerOp(); got != c.want {
			t.Errorf("ops %d cpu %v idle %v: %v µs, want %v", c.ops, c.cpu, c.idle, got, c.want)
		}
	}
}

func TestReplicasMarkdown(t *testing.T) {
	run := map[string]*result{}
	for _, n := range replicaCounts {
		for _, per := range []bool{false, true} {
			run[replicaName(n, per)] = &result{ops: 1000, window: time.Second, lat: []time.Duration{time.Millisecond},
				serverCPU: 100 * time.Millisecond, idleCPU: 10 * time.Millisecond, commits: 10, records: 200}
		}
	}
	r := &Report{Config: Config{Callers: 64}, Runs: []map[string]*result{run}}
	var b strings.Builder
	r.replicasMarkdown(&b)
	for _, want := range []string{
		"| 1 | 64 | 1000 calls/s | 1ms | 100.0 µs | 90.0 µs | 20.0 |",
		"| 3 | 64 |",
		"| 3 | 192 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	var empty strings.Builder
	(&Report{}).replicasMarkdown(&empty)
	if empty.Len() != 0 {
		t.Errorf("nothing measured, yet: %q", empty.String())
	}
}
