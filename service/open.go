package service

import (
	"errors"
	"fmt"

	"github.com/tcpstated/tcpstated/store/filestore"
)

// Open is New over the embedded file store in cfg.DataDir (cfg.Fsync,
// cfg.FsyncBatchInterval), for callers that wire nothing else: tests, the
// examples and the TUN bridge. This file is the only one of the service
// that names a store implementation; `tcpstated serve` opens its store
// itself and calls New.
func Open(cfg Config) (*Service, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("service: no data directory")
	}
	st, err := filestore.Open(cfg.DataDir, filestore.Options{
		Fsync:         cfg.Fsync,
		BatchInterval: cfg.FsyncBatchInterval,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return New(st, cfg)
}
