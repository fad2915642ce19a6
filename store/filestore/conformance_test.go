package filestore_test

import (
	"fmt"
	"testing"

	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
	"github.com/tcpstated/tcpstated/store/storetest"
)

// TestConformance runs the suite in every fsync mode, with the default
// bound on open log files and with a bound of 2, so most logs the suite
// uses have their fd closed and reopened between calls.
func TestConformance(t *testing.T) {
	for _, mode := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch, store.FsyncNever} {
		for _, maxOpen := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/max-open-%d", mode, maxOpen), func(t *testing.T) {
				storetest.Run(t, func(t *testing.T, maxLogSize int64) storetest.Opener {
					dir := t.TempDir()
					return func() (store.Store, error) {
						return filestore.Open(dir, filestore.Options{Fsync: mode, MaxLogSize: maxLogSize, MaxOpenLogs: maxOpen, Logger: quiet})
					}
				})
			})
		}
	}
}
