package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// Resource names (sessions/{session}/endpoints/{endpoint}) are in
// service/machine (names.go): the machine names its endpoints.
const maxSessionIDLen = 63

// Log names. Each tenant has its own namespace of session IDs (tenant.go),
// but the log store has one namespace of file names, so the log of a
// tenant's session is named after the tenant too: "t", the first
// tenantHashLen hex digits of the SHA-256 of the tenant's name, "-" and the
// ID ("t1a2b3c4d5e-demo"). A session with no owner (created without
// authentication) keeps the plain ID as its log name, as before tenants had
// namespaces, so existing data directories keep working. A log name is at
// most 63 characters, so a tenant's session IDs are at most
// maxTenantSessionIDLen.
const (
	tenantHashLen         = 10
	tenantLogPrefixLen    = 1 + tenantHashLen + 1
	maxTenantSessionIDLen = maxSessionIDLen - tenantLogPrefixLen
)

// logName returns the name of the log of session id of tenant.
func logName(tenant, id string) string {
	if tenant == "" {
		return id
	}
	h := sha256.Sum256([]byte(tenant))
	return "t" + hex.EncodeToString(h[:])[:tenantHashLen] + "-" + id
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newSessionID returns a random session ID: "s-" and 16 base32 characters.
func newSessionID() string {
	var b [10]byte
	rand.Read(b[:])
	return "s-" + idEncoding.EncodeToString(b[:])
}

// Page tokens are opaque to clients: base64url of "v1:" and the position.
func encodePageToken(pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + pos))
}

func decodePageToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "v1:") {
		return "", invalidf("page_token: %q is not a token this server issued", tok)
	}
	return string(b[3:]), nil
}

// decodeNumericPageToken decodes a page token holding a number of at most
// bits bits (an endpoint ID, a record index); 0 for the first page.
func decodeNumericPageToken(tok string, bits int) (uint64, error) {
	s, err := decodePageToken(tok)
	if err != nil || s == "" {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, invalidf("page_token: %q is not a token this server issued", tok)
	}
	return n, nil
}

// pagedList resolves a List call's parent session and checks its page
// size and numeric page token, in that order, so that the first thing
// wrong is the one reported.
func (s *Service) pagedList(ctx context.Context, parent string, pageSize int32, token string, bits int) (*session, int, uint64, error) {
	ss, err := s.lookupName(ctx, "parent", parent)
	if err != nil {
		return nil, 0, 0, err
	}
	size, err := s.cfg.Limits.pageSize(pageSize)
	if err != nil {
		return nil, 0, 0, err
	}
	from, err := decodeNumericPageToken(token, bits)
	if err != nil {
		return nil, 0, 0, err
	}
	return ss, size, from, nil
}

// pageSize validates and caps a request's page_size.
func (l Limits) pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, invalidf("page_size: %d is negative", n)
	case n == 0:
		return l.DefaultPageSize, nil
	case int(n) > l.MaxPageSize:
		return l.MaxPageSize, nil
	}
	return int(n), nil
}
