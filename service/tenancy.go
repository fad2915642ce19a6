package service

import (
	"context"
	"sort"

	"github.com/tcpstated/tcpstated/service/tenant"
)

// Tenants. With Config.RequireTenant (the binary's --auth-tokens) every call
// carries the name of the tenant that made it (tenant.NewContext, set by
// the tenant.Authenticator's interceptors from the caller's bearer token). A
// session belongs to the tenant that created it: the name is written in its
// start record (SessionStart.tenant) and read back when the session is
// restored.
//
// Every tenant has its own namespace of session IDs: the registry is keyed
// by (tenant, ID), and every call resolves sessions/{id} within the
// caller's tenant only (Service.lookup), so alice's sessions/demo and bob's
// sessions/demo are two sessions, each visible only to its owner, and
// CreateSession with an ID another tenant holds succeeds. A tenant cannot
// tell another tenant's session from no session. Logs are named after the
// tenant and the ID (logName in names.go).
//
// Without RequireTenant there is one anonymous tenant, "", and one
// namespace: the sessions with no owner. Sessions with an owner are
// restored (and count towards Limits.MaxSessions) but are not visible to
// the anonymous caller, since two tenants may hold the same ID; sessions
// with no owner are not visible to any tenant.

// sessionKey is a session's key in the registry: its owner and its ID.
type sessionKey struct {
	tenant, id string
}

// caller returns the tenant of a call, and false when the service requires
// tenants and ctx has none (such a caller sees no session at all).
func (s *Service) caller(ctx context.Context) (string, bool) {
	if !s.cfg.RequireTenant {
		return "", true
	}
	t, ok := tenant.FromContext(ctx)
	return t, ok && t != ""
}

// reserveSession checks the per-tenant session limit for the caller of a
// CreateSession and counts the session; the caller must releaseSession if
// the creation fails. It returns the tenant that will own the session.
func (s *Service) reserveSession(ctx context.Context) (string, error) {
	t, ok := s.caller(ctx)
	if !ok {
		return "", errorf(kindUnauthenticated, "the call has no tenant: this server requires a bearer token")
	}
	max := 0
	if s.cfg.RequireTenant {
		max = s.cfg.Limits.MaxSessionsPerTenant
	}
	if !s.tenants.Reserve(t, max) {
		return "", exhaustedf("tenant %q holds its limit of %d sessions", t, max)
	}
	return t, nil
}

// TenantSessions returns the number of sessions tenant owns.
func (s *Service) TenantSessions(tenant string) int { return s.tenants.Count(tenant) }

// sortedIDsFor returns the IDs of the sessions the caller of ctx may see, in
// name order.
func (s *Service) sortedIDsFor(ctx context.Context) []string {
	t, ok := s.caller(ctx)
	if !ok {
		return nil
	}
	var ids []string
	s.sessions.Range(func(k, _ any) bool {
		if k := k.(sessionKey); k.tenant == t {
			ids = append(ids, k.id)
		}
		return true
	})
	sort.Strings(ids)
	return ids
}
