package service

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/protoadapt"

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

// apiError is an error the service decided on, with its kind and, where
// the kind's default reason says too little, its own reason.
type apiError struct {
	kind   kind
	reason string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errorf(k kind, format string, args ...any) error {
	return &apiError{kind: k, msg: fmt.Sprintf(format, args...)}
}

// reasonf is errorf with a reason of its own (see reasons).
func reasonf(k kind, reason, format string, args ...any) error {
	return &apiError{kind: k, reason: reason, msg: fmt.Sprintf(format, args...)}
}

func sessionNotFound(name string) error {
	return reasonf(kindNotFound, "SESSION_NOT_FOUND", "session %s not found", name)
}

func invalidf(format string, args ...any) error   { return errorf(kindInvalid, format, args...) }
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

// kindReasons are the ErrorInfo reasons of the kinds, where a call site
// gives none of its own.
var kindReasons = [...]string{
	kindInvalid:      "INVALID_ARGUMENT",
	kindNotFound:     "NOT_FOUND",
	kindExists:       "ALREADY_EXISTS",
	kindPrecondition: "FAILED_PRECONDITION",
	kindExhausted:    "LIMIT_EXCEEDED",
	kindUnavailable:  "UNAVAILABLE",
	kindDataLoss:     "LOG_DAMAGED",
	kindInternal:     "INTERNAL",

	kindUnauthenticated: "TENANT_REQUIRED",
}

// sentinelCodes maps the engine's and the log store's errors to codes and
// ErrorInfo reasons. The engine's texts are RFC 9293's responses and
// become the status message as they are.
var sentinelCodes = []struct {
	err    error
	code   codes.Code
	reason string
}{
	// A known endpoint whose TCB is gone. (An endpoint ID the session never
	// had is NOT_FOUND, decided before the engine is called.)
	{fsm.ErrConnectionDoesNotExist, codes.FailedPrecondition, "CONNECTION_DOES_NOT_EXIST"},
	{fsm.ErrConnectionExists, codes.AlreadyExists, "CONNECTION_EXISTS"},
	{fsm.ErrConnectionClosing, codes.FailedPrecondition, "CONNECTION_CLOSING"},
	{fsm.ErrConnectionReset, codes.FailedPrecondition, "CONNECTION_RESET"},
	{fsm.ErrConnectionRefused, codes.FailedPrecondition, "CONNECTION_REFUSED"},
	{fsm.ErrTimedOut, codes.FailedPrecondition, "CONNECTION_TIMED_OUT"},
	{fsm.ErrNotListener, codes.FailedPrecondition, "NOT_A_LISTENER"},
	{fsm.ErrIsListener, codes.FailedPrecondition, "IS_A_LISTENER"},
	{fsm.ErrNoConnection, codes.FailedPrecondition, "NO_CONNECTION_WAITING"},
	{fsm.ErrForeignUnspecified, codes.FailedPrecondition, "FOREIGN_SOCKET_UNSPECIFIED"},
	{fsm.ErrInsufficientResources, codes.ResourceExhausted, "INSUFFICIENT_RESOURCES"},
	{fsm.ErrEndpointLimit, codes.ResourceExhausted, "ENDPOINT_LIMIT"},
	{fsm.ErrInvalidAddress, codes.InvalidArgument, "INVALID_ADDRESS"},
	{fsm.ErrNoUrgent, codes.FailedPrecondition, "NO_URGENT_DATA"},
	{fsm.ErrUrgentNotYet, codes.FailedPrecondition, "URGENT_DATA_NOT_YET"},
	{machine.ErrInvalid, codes.InvalidArgument, "INVALID_ARGUMENT"},
	{machine.ErrNotFound, codes.NotFound, "ENDPOINT_NOT_FOUND"},
	{machine.ErrExists, codes.AlreadyExists, "ENDPOINT_ALREADY_EXISTS"},
	{store.ErrLogFull, codes.ResourceExhausted, "LOG_FULL"},
	{store.ErrTooLarge, codes.ResourceExhausted, "RECORD_TOO_LARGE"},
	{store.ErrPoisoned, codes.Unavailable, "LOG_FAILED"},
	{store.ErrUnavailable, codes.Unavailable, "STORE_UNAVAILABLE"},
	{store.ErrClosed, codes.Unavailable, "STORE_CLOSED"},
	{store.ErrExists, codes.AlreadyExists, "SESSION_ALREADY_EXISTS"},
	{context.Canceled, codes.Canceled, "CANCELLED"},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "DEADLINE_EXCEEDED"},
}

// toStatus converts an error of the service into a gRPC status error
// whose details a program can branch on (AIP-193): a google.rpc.ErrorInfo
// with a stable reason in the tcpstated.dev domain and, for
// INVALID_ARGUMENT, a google.rpc.BadRequest naming the field. The message
// stays the one a person reads. The interceptor adds the resource the
// call named (withResource).
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code, reason := classify(err)
	return detailed(code, reason, err.Error())
}

func classify(err error) (codes.Code, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		r := ae.reason
		if r == "" {
			r = kindReasons[ae.kind]
		}
		return kindCodes[ae.kind], r
	}
	var pe *fsm.ParseError
	if errors.As(err, &pe) {
		return codes.InvalidArgument, "MALFORMED_SEGMENT"
	}
	for _, s := range sentinelCodes {
		if errors.Is(err, s.err) {
			return s.code, s.reason
		}
	}
	return codes.Unknown, "UNKNOWN"
}

// ErrorDomain is the domain of every ErrorInfo the service returns.
const ErrorDomain = "tcpstated.dev"

// fieldPrefix matches the field path a validation message starts with,
// "session.options.mss: …" or "fields.flags[2]: …".
var fieldPrefix = regexp.MustCompile(`^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*|\[[0-9]+\])*): `)

func detailed(code codes.Code, reason, msg string) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}}
	if code == codes.InvalidArgument {
		br := &errdetails.BadRequest{}
		if m := fieldPrefix.FindStringSubmatch(msg); m != nil {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: m[1], Description: msg[len(m[0]):], Reason: reason})
		} else {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Description: msg, Reason: reason})
		}
		details = append(details, br)
	}
	if d, err := st.WithDetails(details...); err == nil {
		st = d
	}
	return st.Err()
}

// withResource adds the resource a failed call named (its request's name
// or parent) to the ErrorInfo metadata, as "resource" and, for a
// resource inside a session, "session".
func withResource(err error, name string) error {
	st, ok := status.FromError(err)
	if !ok || err == nil || name == "" {
		return err
	}
	p := st.Proto()
	for _, a := range p.Details {
		var info errdetails.ErrorInfo
		if a.MessageIs(&info) && a.UnmarshalTo(&info) == nil {
			if info.Metadata == nil {
				info.Metadata = map[string]string{}
			}
			if _, ok := info.Metadata["resource"]; ok {
				return err
			}
			info.Metadata["resource"] = name
			if parts := strings.SplitN(name, "/", 3); len(parts) == 3 && parts[0] == "sessions" {
				info.Metadata["session"] = parts[0] + "/" + parts[1]
			}
			if a.MarshalFrom(&info) != nil {
				return err
			}
			return status.FromProto(p).Err()
		}
	}
	return err
}

// withMetadata adds key: value to an error's ErrorInfo metadata, unless
// it has the key.
func withMetadata(err error, key, value string) error {
	st, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	p := st.Proto()
	for _, a := range p.Details {
		var info errdetails.ErrorInfo
		if a.MessageIs(&info) && a.UnmarshalTo(&info) == nil {
			if _, ok := info.Metadata[key]; ok {
				return err
			}
			if info.Metadata == nil {
				info.Metadata = map[string]string{}
			}
			info.Metadata[key] = value
			if a.MarshalFrom(&info) != nil {
				return err
			}
			return status.FromProto(p).Err()
		}
	}
	return err
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
