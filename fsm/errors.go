package fsm

import "errors"

// Errors returned by application calls. The texts are the responses RFC 9293
// §3.10 prescribes for each call in each state.
var (
	ErrConnectionDoesNotExist = errors.New("connection does not exist")
	ErrConnectionExists       = errors.New("connection already exists")
	ErrConnectionClosing      = errors.New("connection closing")
	ErrConnectionReset        = errors.New("connection reset")
	ErrConnectionRefused      = errors.New("connection refused")
	ErrTimedOut               = errors.New("connection aborted due to user timeout")
	ErrInsufficientResources  = errors.New("insufficient resources")
	ErrForeignUnspecified     = errors.New("foreign socket unspecified")
	ErrNotListener            = errors.New("endpoint is not a listener")
	ErrIsListener             = errors.New("endpoint is a listener, not a connection")
	ErrNoConnection           = errors.New("no connection waiting to be accepted")
	ErrInvalidAddress         = errors.New("invalid address")
	ErrEndpointLimit          = errors.New("too many endpoints")
)
