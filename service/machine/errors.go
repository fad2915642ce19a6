package machine

import (
	"errors"
	"fmt"
)

// Kinds of refusal, for errors.Is; the service maps them to gRPC codes
// (service/errors.go). A refused input changes nothing.
var (
	ErrInvalid  = errors.New("invalid argument") // the input or a name is malformed
	ErrNotFound = errors.New("not found")        // no such endpoint
	ErrExists   = errors.New("already exists")   // the endpoint ID is taken
)

// refusal is an error whose text is the whole message and whose kind is one
// of the above.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string        { return e.msg }
func (e *refusal) Is(target error) bool { return target == e.kind }

func errorf(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error  { return errorf(ErrInvalid, format, args...) }
func notFoundf(format string, args ...any) error { return errorf(ErrNotFound, format, args...) }
