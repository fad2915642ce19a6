package pgstore

import (
	"context"
	"testing"

	"github.com/tcpstated/tcpstated/internal/pgtest"
	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/storetest"
)

// TestConformance runs the shared store suite against a real PostgreSQL,
// in each durability mode: a place is a fresh database, and reopening it is
// a new Store (as a restarted replica of the same name).
func TestConformance(t *testing.T) {
	for _, mode := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch, store.FsyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, maxLogSize int64) storetest.Opener {
				srv := pgtest.Shared(t)
				url := srv.URL(srv.NewDB(t))
				return func() (store.Store, error) {
					return Open(context.Background(), url, Options{Fsync: mode, MaxLogSize: maxLogSize, Replica: "conformance"})
				}
			})
		})
	}
}
