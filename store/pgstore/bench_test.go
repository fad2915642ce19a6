package pgstore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/store"
)

// BenchmarkUnaryAppends: callers, each on a log of its own, append a pair
// of records (a call's input and output) and wait for their commit, as
// the service's unary calls do with --fsync=always. It reports commits per
// second and records per round.
func BenchmarkUnaryAppends(b *testing.B) {
	for _, callers := range []int{64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s, _ := newStore(b, Options{Replica: "a", Fsync: store.FsyncAlways})
			logs := make([]store.Log, callers)
			for i := range logs {
				l, err := s.Create(fmt.Sprintf("l%d", i))
				if err != nil {
					b.Fatal(err)
				}
				logs[i] = l
			}
			pair := [][]byte{payload(1, 60), payload(2, 90)}
			b.ResetTimer()
			start := time.Now()
			before := s.Stats()
			var wg sync.WaitGroup
			per := (b.N + callers - 1) / callers
			for _, l := range logs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						_, last, err := l.AppendBatch(pair)
						if err == nil {
							err = l.Durable(last)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			st := s.Stats()
			b.ReportMetric(float64(per*callers)/el.Seconds(), "calls/s")
			if r := st.Rounds - before.Rounds; r > 0 {
				b.ReportMetric(float64(st.Statements-before.Statements)/float64(r), "logs/round")
			}
		})
	}
}
