// Package tenant is who makes a call: bearer tokens mapped to tenant names
// (Authenticator), the tenant carried in a call's context, and the count of
// sessions each tenant holds. What a tenant may see is the service's
// business (service/tenancy.go).
package tenant

import (
	"context"
	"sync"
)

type tenantKey struct{}

// NewContext returns ctx carrying the name of the tenant that makes
// the call.
func NewContext(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// FromContext returns the tenant NewContext put in ctx.
func FromContext(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok
}

// Counts counts the sessions of each tenant, for
// Limits.MaxSessionsPerTenant.
type Counts struct {
	mu sync.Mutex
	n  map[string]int
}

// Reserve counts one more session for tenant, unless it already holds max.
func (c *Counts) Reserve(tenant string, max int) bool {
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

// Release counts one session fewer for tenant.
func (c *Counts) Release(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[tenant] <= 1 {
		delete(c.n, tenant)
		return
	}
	c.n[tenant]--
}

// Count returns the sessions of tenant.
func (c *Counts) Count(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[tenant]
}
