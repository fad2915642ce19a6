package store

import (
	"fmt"
	"log/slog"
	"sync/atomic"
)

// Poison is a log's first failure, kept for good: after a failed write,
// fsync or commit a store cannot tell what is durable, so the log refuses
// every later call with the same error (ErrPoisoned) until the service
// reopens it from what the medium holds. The zero value is healthy.
type Poison struct {
	failure atomic.Pointer[error]
}

// Err returns the failure, or nil.
func (p *Poison) Err() error {
	if e := p.failure.Load(); e != nil {
		return *e
	}
	return nil
}

// Set records cause as the failure of log name, unless one is recorded
// already, and returns the failure in effect (ErrPoisoned wrapping the
// first cause). The first one is logged.
func (p *Poison) Set(logger *slog.Logger, name string, cause error) error {
	err := fmt.Errorf("%w: %q: %w", ErrPoisoned, name, cause)
	if p.failure.CompareAndSwap(nil, &err) {
		logger.Error("log failed; it refuses every further call", "log", name, "err", cause)
		return err
	}
	return p.Err()
}
