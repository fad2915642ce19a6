package machine

import (
	"strconv"
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/store"
)

// Resource names (AIP-122): sessions/{session} and
// sessions/{session}/endpoints/{endpoint}.
const (
	SessionsPrefix = "sessions/"
	EndpointsInfix = "/endpoints/"
)

// ValidSessionID reports whether id can name a session: 1 to 63 characters
// of [a-z0-9-], which is also what a log file name may be.
func ValidSessionID(id string) bool { return store.ValidName(id) }

// ValidEndpointAlias reports whether a client-chosen endpoint ID is
// acceptable: 1 to 63 characters of [a-z0-9-] starting with a letter, so it
// can never be mistaken for an engine ID, which is a decimal number.
func ValidEndpointAlias(id string) bool {
	return store.ValidName(id) && id[0] >= 'a' && id[0] <= 'z'
}

func SessionName(id string) string { return SessionsPrefix + id }

// ParseSessionName returns the ID in "sessions/{id}".
func ParseSessionName(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, SessionsPrefix)
	if !ok || !ValidSessionID(id) {
		return "", invalidf("%s: %q is not a session name (want sessions/{session}, the ID 1 to 63 characters of a-z, 0-9 and -)", field, name)
	}
	return id, nil
}

// ParseEndpointName returns the IDs in "sessions/{s}/endpoints/{e}".
func ParseEndpointName(field, name string) (sid, eid string, err error) {
	rest, ok := strings.CutPrefix(name, SessionsPrefix)
	if ok {
		sid, eid, ok = strings.Cut(rest, EndpointsInfix)
	}
	if !ok || !ValidSessionID(sid) || !store.ValidName(eid) {
		return "", "", invalidf("%s: %q is not an endpoint name (want sessions/{session}/endpoints/{endpoint})", field, name)
	}
	return sid, eid, nil
}

// ParseEngineID parses an endpoint ID the engine assigned (decimal).
func ParseEngineID(s string) (fsm.EndpointID, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return fsm.EndpointID(n), true
}
