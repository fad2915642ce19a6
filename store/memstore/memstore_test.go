package memstore_test

import (
	"testing"

	"github.com/tcpstated/tcpstated/store"
	"github.com/tcpstated/tcpstated/store/memstore"
	"github.com/tcpstated/tcpstated/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, maxLogSize int64) storetest.Opener {
		var last *memstore.Store
		return func() (store.Store, error) {
			if last == nil {
				last = memstore.New(memstore.Options{MaxLogSize: maxLogSize})
			} else {
				last = last.Reopen()
			}
			return last, nil
		}
	})
}
