package service

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tcpstated/tcpstated/fsm"

	"github.com/tcpstated/tcpstated/store"

	"github.com/tcpstated/tcpstated/service/machine"
)

// This file is the only one that knows about gRPC status codes: the service
// returns plain errors (its own *apiError kinds, fsm's sentinels, the store's
// errors) and every handler converts them with toStatus, as etcd's v3rpc
// does with togRPCError.

// kind classifies the service's own errors.
type kind uint8

const (
	kindInvalid         kind = iota + 1 // the request is malformed
	kindNotFound                        // no such session or endpoint
	kindExists                          // the ID is taken
	kindPrecondition                    // the call is not allowed in this state
	kindExhausted                       // a limit was reached
	kindUnavailable                     // the server or the session is shutting down or failed
	kindDataLoss                        // a session's log is damaged beyond recovery
	kindInternal                        // a bug or an I/O failure
	kindUnauthenticated                 // the call carries no tenant (tenant.go)
)

// apiError is an error the service decided on, with its kind.
type apiError struct {
	kind kind
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(k kind, format string, args ...any) error {
	return &apiError{kind: k, msg: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error   { return errorf(kindInvalid, format, args...) }
func notFoundf(format string, args ...any) error  { return errorf(kindNotFound, format, args...) }
func exhaustedf(format string, args ...any) error { return errorf(kindExhausted, format, args...) }

var kindCodes = [...]codes.Code{
	kindInvalid:      codes.InvalidArgument,
	kindNotFound:     codes.NotFound,
	kindExists:       codes.AlreadyExists,
	kindPrecondition: codes.FailedPrecondition,
	kindExhausted:    codes.ResourceExhausted,
	kindUnavailable:  codes.Unavailable,
	kindDataLoss:     codes.DataLoss,
	kindInternal:     codes.Internal,

	kindUnauthenticated: codes.Unauthenticated,
}

// sentinelCodes maps the engine's and the log store's errors to codes. The
// engine's texts are RFC 9293's responses and become the status message as
// they are.
var sentinelCodes = []struct {
	err  error
	code codes.Code
}{
	// A known endpoint whose TCB is gone. (An endpoint ID the session never
	// had is NOT_FOUND, decided before the engine is called.)
	{fsm.ErrConnectionDoesNotExist, codes.FailedPrecondition},
	{fsm.ErrConnectionExists, codes.AlreadyExists},
	{fsm.ErrConnectionClosing, codes.FailedPrecondition},
	{fsm.ErrConnectionReset, codes.FailedPrecondition},
	{fsm.ErrConnectionRefused, codes.FailedPrecondition},
	{fsm.ErrTimedOut, codes.FailedPrecondition},
	{fsm.ErrNotListener, codes.FailedPrecondition},
	{fsm.ErrIsListener, codes.FailedPrecondition},
	{fsm.ErrNoConnection, codes.FailedPrecondition},
	{fsm.ErrForeignUnspecified, codes.FailedPrecondition},
	{fsm.ErrInsufficientResources, codes.ResourceExhausted},
	{fsm.ErrEndpointLimit, codes.ResourceExhausted},
	{fsm.ErrInvalidAddress, codes.InvalidArgument},
	{machine.ErrInvalid, codes.InvalidArgument},
	{machine.ErrNotFound, codes.NotFound},
	{machine.ErrExists, codes.AlreadyExists},
	{store.ErrLogFull, codes.ResourceExhausted},
	{store.ErrTooLarge, codes.ResourceExhausted},
	{store.ErrPoisoned, codes.Unavailable},
	{store.ErrUnavailable, codes.Unavailable},
	{store.ErrClosed, codes.Unavailable},
	{store.ErrExists, codes.AlreadyExists},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// toStatus converts an error of the service into a gRPC status error.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return status.Error(kindCodes[ae.kind], ae.msg)
	}
	var pe *fsm.ParseError
	if errors.As(err, &pe) {
		return status.Error(codes.InvalidArgument, pe.Error())
	}
	for _, s := range sentinelCodes {
		if errors.Is(err, s.err) {
			return status.Error(s.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// newRerun is a re-run that records a refused input's code as the service
// answers it.
func newRerun() *machine.Rerun {
	return &machine.Rerun{ErrorCode: func(err error) int32 { return int32(statusCode(err)) }}
}

// statusCode returns the code toStatus gives err, for logging and records.
func statusCode(err error) codes.Code {
	return status.Code(toStatus(err))
}
