package filestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpstated/tcpstated/store"
)

// Run with: go test -run '^$' -bench . -benchmem ./store/filestore/
// The logs go to a temporary directory; set REPLAYLOG_BENCH_DIR to measure
// the file system the data directory will really be on (where /tmp is a
// tmpfs, fsync costs nothing).

func benchDir(b *testing.B) string {
	b.Helper()
	parent := os.Getenv("REPLAYLOG_BENCH_DIR")
	if parent == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func reportSyncs(b *testing.B, s *FileStore) {
	st := s.Stats()
	if st.Appends == 0 {
		return
	}
	b.ReportMetric(float64(st.Fdatasyncs+st.Syncfs)/float64(st.Appends), "fsyncs/append")
	if st.Rounds > 0 {
		b.ReportMetric(float64(st.Appends)/float64(st.Rounds), "appends/round")
	}
}

// BenchmarkAppendNever: the cost of framing, CRC and one write(2).
func BenchmarkAppendNever(b *testing.B) {
	s := openTestStore(b, benchDir(b), Options{Fsync: store.FsyncNever})
	l, err := s.Create("bench")
	if err != nil {
		b.Fatal(err)
	}
	p := payload(1, 64)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendAlways: one appender, so one fsync per append: the raw
// fsync latency of this machine.
func BenchmarkAppendAlways(b *testing.B) {
	s := openTestStore(b, benchDir(b), Options{})
	l, err := s.Create("bench")
	if err != nil {
		b.Fatal(err)
	}
	p := payload(1, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(p); err != nil {
			b.Fatal(err)
		}
	}
	reportSyncs(b, s)
}

// BenchmarkAppendAlwaysParallel: 64 appenders (32 per core here), each on
// its own log (a session) or all on one log, in store.FsyncAlways mode. ns/op is
// wall time per append across all appenders; group commit shows as
// fsyncs/append far below 1.
func BenchmarkAppendAlwaysParallel(b *testing.B) {
	for _, tc := range []struct {
		name   string
		shared bool
		opts   Options
	}{
		{"logs=per-goroutine", false, Options{}},
		{"logs=per-goroutine/fdatasync-only", false, Options{SyncfsThreshold: -1}},
		{"logs=one", true, Options{}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := openTestStore(b, benchDir(b), tc.opts)
			shared, err := s.Create("shared")
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			p := payload(1, 64)
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				l := shared
				if !tc.shared {
					var err error
					if l, err = s.Create(fmt.Sprintf("s%d", next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
				for pb.Next() {
					if _, err := l.Append(p); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			reportSyncs(b, s)
		})
	}
}

// BenchmarkSyncRound measures the choice DefaultSyncfsThreshold encodes:
// making N files that each got one small append durable with N fdatasyncs
// one after the other, N concurrent fdatasyncs, or one syncfs of their
// directory. ns/op is one round.
func BenchmarkSyncRound(b *testing.B) {
	for _, n := range []int{1, 2, 3, 4, 8, 16, 64} {
		for _, how := range []string{"fdatasync", "fdatasync-parallel", "syncfs"} {
			b.Run(fmt.Sprintf("files=%d/%s", n, how), func(b *testing.B) {
				if how == "syncfs" && !syncfsUsable() {
					b.Skip("syncfs not usable here")
				}
				dir := benchDir(b)
				d, err := os.Open(dir)
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				files := make([]*os.File, n)
				for i := range files {
					f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					files[i] = f
				}
				rec, _ := appendFrame(nil, 0, payload(1, 64))
				var syncTime time.Duration
				for b.Loop() {
					for _, f := range files {
						if _, err := f.Write(rec); err != nil {
							b.Fatal(err)
						}
					}
					t0 := time.Now()
					switch how {
					case "syncfs":
						err = syncfs(d)
					case "fdatasync-parallel": // what a round without syncfs does
						var wg sync.WaitGroup
						var failed atomic.Bool
						for _, f := range files {
							wg.Go(func() {
								if fdatasync(f) != nil {
									failed.Store(true)
								}
							})
						}
						wg.Wait()
						if failed.Load() {
							err = errors.New("fdatasync failed")
						}
					default:
						for _, f := range files {
							if err = fdatasync(f); err != nil {
								break
							}
						}
					}
					syncTime += time.Since(t0)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(syncTime.Microseconds())/float64(b.N), "µs-sync/round")
			})
		}
	}
}

// BenchmarkAppendBatchNever: the records of one service call (2) or one
// 64-packet stream message (128), each about the size the service writes
// (an input record with a 104-byte packet, an output record), appended one
// AppendAsync at a time, with one AppendBatch, or with one AppendFramed of
// frames built once (as the service builds them while encoding). ns/op is
// per record.
func BenchmarkAppendBatchNever(b *testing.B) {
	for _, n := range []int{2, 128} {
		recs := make([][]byte, n)
		for i := range recs {
			recs[i] = payload(i, 120-40*(i%2))
		}
		frames := frame(recs)
		for _, how := range []string{"one-by-one", "batch", "framed"} {
			b.Run(fmt.Sprintf("records=%d/%s", n, how), func(b *testing.B) {
				s := openTestStore(b, benchDir(b), Options{Fsync: store.FsyncNever})
				l, err := s.Create("bench")
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if i%n != 0 {
						continue // one op per record: a batch every n ops
					}
					switch how {
					case "batch":
						_, _, err = l.AppendBatch(recs)
					case "framed":
						_, _, err = l.(*FileLog).AppendFramed(frames, n)
					default:
						for _, r := range recs {
							if _, err = l.(*FileLog).AppendAsync(r); err != nil {
								break
							}
						}
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
