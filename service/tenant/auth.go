package tenant

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Authentication by bearer token. A token file maps tokens to tenant names,
// one pair per line:
//
//	# comment
//	TOKEN TENANT
//
// A token is 16 to 512 printable ASCII characters without spaces; a tenant
// name is 1 to 63 characters of a-z, A-Z, 0-9, '-', '_' and '.'. Several
// tokens may map to one tenant (rotation). Every gRPC call (except
// grpc.health.v1) must carry the metadata `authorization: Bearer TOKEN`;
// the REST gateway forwards the HTTP Authorization header as that metadata,
// and HTTPMiddleware checks it before the gateway as well. The tenant the
// token maps to is put in the call's context (NewContext), and the
// service shows that tenant only its own sessions.
//
// Reload re-reads the file (the binary calls it on SIGHUP): new tokens work
// at once, removed ones stop working for new calls; streams already open
// keep the tenant they started with. A file that does not parse leaves the
// tokens in effect unchanged.

// Token and tenant bounds.
const (
	minTokenLen     = 16
	maxTokenLen     = 512
	maxTenantLen    = 63
	maxTokenFileLen = 16 << 20
)

// ParseTokens reads a token file: token → tenant.
func ParseTokens(r io.Reader) (map[string]string, error) {
	tokens := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, maxTokenFileLen))
	sc.Buffer(make([]byte, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want TOKEN TENANT, got %d fields", n, len(f))
		}
		tok, tenant := f[0], f[1]
		if len(tok) < minTokenLen || len(tok) > maxTokenLen || !printableASCII(tok) {
			return nil, fmt.Errorf("line %d: a token must be %d to %d printable ASCII characters", n, minTokenLen, maxTokenLen)
		}
		if !ValidName(tenant) {
			return nil, fmt.Errorf("line %d: tenant %q is not 1 to %d characters of a-z, A-Z, 0-9, '-', '_' and '.'", n, tenant, maxTenantLen)
		}
		if _, dup := tokens[tok]; dup {
			return nil, fmt.Errorf("line %d: the token appears twice", n)
		}
		tokens[tok] = tenant
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	return tokens, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func ValidName(t string) bool {
	if t == "" || len(t) > maxTenantLen {
		return false
	}
	for _, r := range t {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Authenticator checks bearer tokens against a token file.
type Authenticator struct {
	path string
	log  *slog.Logger
	// tokens maps the SHA-256 of each token to its tenant, so that a
	// lookup's timing says nothing about how much of a guess was right.
	tokens atomic.Pointer[map[[32]byte]string]
}

// NewAuthenticator loads the token file at path.
func NewAuthenticator(path string, log *slog.Logger) (*Authenticator, error) {
	if log == nil {
		log = slog.Default()
	}
	a := &Authenticator{path: path, log: log}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload re-reads the token file. On error the tokens in effect stay.
func (a *Authenticator) Reload() error {
	f, err := os.Open(a.path)
	if err != nil {
		return fmt.Errorf("auth tokens: %w", err)
	}
	defer f.Close()
	tokens, err := ParseTokens(f)
	if err != nil {
		return fmt.Errorf("auth tokens %s: %w", a.path, err)
	}
	m := make(map[[32]byte]string, len(tokens))
	tenants := map[string]bool{}
	for tok, tenant := range tokens {
		m[sha256.Sum256([]byte(tok))] = tenant
		tenants[tenant] = true
	}
	a.tokens.Store(&m)
	a.log.Info("auth tokens loaded", "file", a.path, "tokens", len(m), "tenants", len(tenants))
	return nil
}

// Tenant returns the tenant of an Authorization value ("Bearer TOKEN").
func (a *Authenticator) Tenant(authorization string) (string, error) {
	if authorization == "" {
		return "", status.Error(codes.Unauthenticated, "this server requires authentication: send the header `authorization: Bearer TOKEN`")
	}
	scheme, tok, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", status.Error(codes.Unauthenticated, "authorization: want `Bearer TOKEN`")
	}
	tenant, ok := (*a.tokens.Load())[sha256.Sum256([]byte(strings.TrimSpace(tok)))]
	if !ok {
		return "", status.Error(codes.Unauthenticated, "authorization: the token is not valid")
	}
	return tenant, nil
}

// openMethods need no token: health checks stay open to load balancers.
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

// authenticate returns ctx with the caller's tenant, or UNAUTHENTICATED.
func (a *Authenticator) authenticate(ctx context.Context) (context.Context, error) {
	var v string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if vals := md.Get("authorization"); len(vals) > 0 {
			v = vals[0]
		}
	}
	tenant, err := a.Tenant(v)
	if err != nil {
		return ctx, err
	}
	return NewContext(ctx, tenant), nil
}

// UnaryInterceptor authenticates unary calls.
func (a *Authenticator) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if openMethod(info.FullMethod) {
			return handler(ctx, req)
		}
		ctx, err := a.authenticate(ctx)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates streaming calls.
func (a *Authenticator) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if openMethod(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx, err := a.authenticate(ss.Context())
		if err != nil {
			return err
		}
		return handler(srv, &tenantStream{ServerStream: ss, ctx: ctx})
	}
}

type tenantStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tenantStream) Context() context.Context { return s.ctx }

// HTTPMiddleware requires a valid bearer token on every request except
// those whose path open reports true, and puts the tenant in the request's
// context. A request without one gets 401 with a JSON body shaped like the
// gateway's errors.
func (a *Authenticator) HTTPMiddleware(open func(path string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		tenant, err := a.Tenant(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tcpstated"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]any{"code": codes.Unauthenticated, "message": status.Convert(err).Message(), "details": []any{}})
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), tenant)))
	})
}
