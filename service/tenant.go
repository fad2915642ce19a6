package service

import (
	"context"
	"sort"
	"sync"
)

// Tenants. With Config.RequireTenant (the binary's --auth-tokens) every call
// carries the name of the tenant that made it (ContextWithTenant, set by
// the Authenticator's interceptors from the caller's bearer token). A
// session belongs to the tenant that created it: the name is written in its
// start record (SessionStart.tenant) and read back when the session is
// restored. Every lookup of a session by name goes through
// Service.lookup, which answers NOT_FOUND, with the very message a missing
// session gets, when the caller is not the owner; ListSessions shows only
// the caller's sessions. So a tenant cannot tell another tenant's session
// from no session, with one exception: CreateSession with a session_id
// another tenant holds is ALREADY_EXISTS (the ID space is shared; IDs the
// server chooses are random 80-bit names).
//
// Without RequireTenant there is one anonymous tenant, "", that sees every
// session, whoever created it.

type tenantKey struct{}

// ContextWithTenant returns ctx carrying the name of the tenant that makes
// the call.
func ContextWithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFromContext returns the tenant ContextWithTenant put in ctx.
func TenantFromContext(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok
}

// caller returns the tenant of a call, and false when the service requires
// tenants and ctx has none (such a caller sees no session at all).
func (s *Service) caller(ctx context.Context) (string, bool) {
	if !s.cfg.RequireTenant {
		return "", true
	}
	t, ok := TenantFromContext(ctx)
	return t, ok && t != ""
}

// visible reports whether the caller of ctx may see ss.
func (s *Service) visible(ctx context.Context, ss *session) bool {
	if !s.cfg.RequireTenant {
		return true
	}
	t, ok := s.caller(ctx)
	return ok && ss.tenant == t
}

// tenantCounts counts the sessions of each tenant, for
// Limits.MaxSessionsPerTenant.
type tenantCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// reserve counts one more session for tenant, unless it already holds max.
func (c *tenantCounts) reserve(tenant string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	if max > 0 && c.n[tenant] >= max {
		return false
	}
	c.n[tenant]++
	return true
}

// release counts one session fewer for tenant.
func (c *tenantCounts) release(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[tenant] <= 1 {
		delete(c.n, tenant)
		return
	}
	c.n[tenant]--
}

// count returns the sessions of tenant.
func (c *tenantCounts) count(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[tenant]
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
	if !s.tenants.reserve(t, max) {
		return "", exhaustedf("tenant %q holds its limit of %d sessions", t, max)
	}
	return t, nil
}

// TenantSessions returns the number of sessions tenant owns.
func (s *Service) TenantSessions(tenant string) int { return s.tenants.count(tenant) }

// sortedIDsFor returns the IDs of the sessions the caller of ctx may see, in
// name order.
func (s *Service) sortedIDsFor(ctx context.Context) []string {
	var ids []string
	s.sessions.Range(func(k, v any) bool {
		if s.visible(ctx, v.(*session)) {
			ids = append(ids, k.(string))
		}
		return true
	})
	sort.Strings(ids)
	return ids
}
