package fsm

import "testing"

// benchRecoveryConfigs are the loss-recovery configurations the hot-path
// figures compare (docs/PERFORMANCE.md): plain NewReno (every issue-11
// mechanism off), the rfc profile's defaults, and everything on.
var benchRecoveryConfigs = []struct {
	name     string
	switches [][2]string
}{
	{"newreno", [][2]string{{"sack_recovery", "0"}, {"prr", "0"}, {"rack", "0"}, {"tlp", "0"}, {"eifel", "0"}, {"congestion_control", "reno"}}},
	{"default", nil},
	{"all", [][2]string{{"congestion_control", "cubic"}, {"hystart", "1"}, {"frto", "1"}, {"ecn", "1"}}},
}

func benchRecoveryConfig(tb testing.TB, switches [][2]string) Config {
	var cfg Config
	for _, kv := range switches {
		if err := cfg.SetSwitch(kv[0], kv[1]); err != nil {
			tb.Fatal(err)
		}
	}
	return cfg
}

// BenchmarkDataSegmentsRecovery is BenchmarkDataSegments/64B under each
// loss-recovery configuration, for the side-by-side figures.
func BenchmarkDataSegmentsRecovery(b *testing.B) {
	for _, c := range benchRecoveryConfigs {
		b.Run(c.name, func(b *testing.B) {
			s := newBenchStream(b, benchRecoveryConfig(b, c.switches), 64, 4096)
			s.run(b, 64)
		})
	}
}

// TestSteadyStateZeroAllocsRecovery: the small-segment path allocates
// nothing once warm under every loss-recovery configuration.
func TestSteadyStateZeroAllocsRecovery(t *testing.T) {
	for _, c := range benchRecoveryConfigs {
		t.Run(c.name, func(t *testing.T) {
			s := newBenchStream(t, benchRecoveryConfig(t, c.switches), 64, 256)
			run := func() {
				for range len(s.ring) {
					if s.pos == len(s.ring) {
						s.refill()
					}
					s.step()
				}
			}
			for range 8 {
				run()
			}
			if n := testing.AllocsPerRun(20, run); n != 0 {
				t.Fatalf("%v allocations per 256 segments in steady state, want 0", n)
			}
			s.check()
		})
	}
}
