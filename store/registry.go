package store

import (
	"fmt"
	"sync"
)

// Registry is a store's set of open logs, keyed by name: a name is
// reserved while its log is being created, opened or removed, so two of
// those never run on one name at once, and an open log keeps its name
// until it closes. L is the store's log type (a pointer); its zero value
// marks a reservation. The zero Registry is empty and open.
type Registry[L comparable] struct {
	mu     sync.Mutex
	open   map[string]L
	closed bool
}

// Reserve marks name as being created, opened or removed: ErrInvalidName,
// ErrClosed once the registry is closed, ErrBusy if the name is open or
// reserved already.
func (r *Registry[L]) Reserve(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, ok := r.open[name]; ok {
		return fmt.Errorf("%w: %q", ErrBusy, name)
	}
	if r.open == nil {
		r.open = make(map[string]L)
	}
	r.open[name] = *new(L)
	return nil
}

// Settle ends name's reservation: the zero l releases the name, any other
// registers l as open under it. If the registry closed meanwhile, l is not
// registered and Settle returns ErrClosed: the caller closes l again.
func (r *Registry[L]) Settle(name string, l L) error {
	var zero L
	r.mu.Lock()
	defer r.mu.Unlock()
	if l == zero {
		delete(r.open, name)
		return nil
	}
	if r.closed {
		delete(r.open, name)
		return ErrClosed
	}
	r.open[name] = l
	return nil
}

// Forget releases name if l is the log open under it (a closing log).
func (r *Registry[L]) Forget(name string, l L) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open[name] == l {
		delete(r.open, name)
	}
}

// Lookup returns the log open under name, if one is.
func (r *Registry[L]) Lookup(name string) (L, bool) {
	var zero L
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.open[name]
	return l, l != zero
}

// Range calls fn for every open log (not for reservations) under the
// registry's lock: fn must not call the registry.
func (r *Registry[L]) Range(fn func(name string, l L)) {
	var zero L
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, l := range r.open {
		if l != zero {
			fn(n, l)
		}
	}
}

// Close closes the registry (later reservations fail with ErrClosed) and
// returns the logs open now, for the store to close; ErrClosed if it was
// closed already.
func (r *Registry[L]) Close() ([]L, error) {
	var zero L
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	r.closed = true
	var logs []L
	for _, l := range r.open {
		if l != zero {
			logs = append(logs, l)
		}
	}
	return logs, nil
}

// Appender gives a store's Log Append, AppendAsync and AppendBatch, the
// same in every store, from the two calls that differ: the store's batch
// append (non-empty batches; all or nothing) and its wait for durability.
// The zero Appender must not be used.
type Appender struct {
	batch func(payloads [][]byte) (first, last uint64, err error)
	wait  func(index uint64) error // nil: Append does not wait
}

// NewAppender returns an Appender over batch; Append waits with wait for
// its record to be durable when wait is not nil (FsyncAlways).
func NewAppender(batch func(payloads [][]byte) (first, last uint64, err error), wait func(index uint64) error) Appender {
	return Appender{batch: batch, wait: wait}
}

// Append writes one record and, if the Appender waits, returns only once
// it is durable. If the wait fails the index is returned with the error:
// the record was written but is not known durable.
func (a *Appender) Append(payload []byte) (uint64, error) {
	i, err := a.AppendAsync(payload)
	if err != nil {
		return 0, err
	}
	if a.wait != nil {
		if err := a.wait(i); err != nil {
			return i, err
		}
	}
	return i, nil
}

// AppendAsync writes one record and returns its index without waiting for
// durability: Durable(index) waits later, typically after the caller
// released its own lock.
func (a *Appender) AppendAsync(payload []byte) (uint64, error) {
	one := [1][]byte{payload}
	first, _, err := a.batch(one[:])
	return first, err
}

// AppendBatch writes several records at once (see Log.AppendBatch); an
// empty batch is ErrEmptyBatch.
func (a *Appender) AppendBatch(payloads [][]byte) (first, last uint64, err error) {
	if len(payloads) == 0 {
		return 0, 0, ErrEmptyBatch
	}
	return a.batch(payloads)
}
