package filestore_test

import (
	"testing"

	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/filestore"
	"github.com/tcpstated/tcpstated/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, mode := range []store.FsyncMode{store.FsyncAlways, store.FsyncBatch, store.FsyncNever} {
		t.Run(mode.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, maxLogSize int64) storetest.Opener {
				dir := t.TempDir()
				return func() (store.Store, error) {
					return filestore.Open(dir, filestore.Options{Fsync: mode, MaxLogSize: maxLogSize, Logger: quiet})
				}
			})
		})
	}
}
