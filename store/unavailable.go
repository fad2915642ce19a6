package store

import "errors"

// ErrUnavailable is wrapped by a store's error when it cannot reach its
// storage now (a database that is restarting or unreachable): nothing was
// changed, and the call may be retried later. Stores on a local disk never
// return it.
var ErrUnavailable = errors.New("store: unavailable")
