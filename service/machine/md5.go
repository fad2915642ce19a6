package machine

import (
	"net/netip"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// ParseMD5Peer checks the peer address of a SetMd5Key call: an IP address
// without a port or zone, not unspecified; empty is allowed (the
// connection's remote address). The message names the field.
func ParseMD5Peer(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, invalidf("peer_address: %q is not an IP address (give the address without a port, e.g. 10.0.0.2)", s)
	case a.Zone() != "":
		return a, invalidf("peer_address: %q has a zone; give the address alone", s)
	case a.IsUnspecified():
		return a, invalidf("peer_address: %q is the unspecified address; give the peer's address", s)
	}
	return a.Unmap(), nil
}

// CheckMD5Key checks the key of a SetMd5Key call (never quoting it).
func CheckMD5Key(key []byte, remove bool) error {
	switch n := len(key); {
	case remove && n > 0:
		return invalidf("key: %d bytes given with remove; give a key to set, or remove alone", n)
	case !remove && n == 0:
		return invalidf("key: empty; give 1 to %d bytes, or set remove to delete the peer's key", maxMD5Key)
	case n > maxMD5Key:
		return invalidf("key: %d bytes, more than %d (TCP_MD5SIG_MAXKEYLEN)", n, maxMD5Key)
	}
	return nil
}

// md5Key applies a Md5KeyInput (setsockopt TCP_MD5SIG on a live socket,
// RFC 2385 §3.0): everything is checked before the engine's key table
// changes, so a refused call changes nothing. An empty peer address, on a
// connection, is filled in with its remote address (as the log keeps it).
func (m *Machine) md5Key(k *pb.Md5KeyInput) (*pb.CallResult, error) {
	id, err := m.Resolve(k.GetEndpointId())
	if err != nil {
		return nil, err
	}
	info, ok := m.Engine.Endpoint(id)
	if !ok {
		return nil, notFoundf("endpoint %s%s%s was closed and is no longer kept", m.session, endpointsInfix, k.GetEndpointId())
	}
	if len(k.GetKey()) > maxMD5Key {
		return nil, invalidf("key: %d bytes, more than %d (TCP_MD5SIG_MAXKEYLEN)", len(k.GetKey()), maxMD5Key)
	}
	peer, err := ParseMD5Peer(k.GetPeerAddress())
	if err != nil {
		return nil, err
	}
	local := info.Local.Addr().Unmap()
	switch {
	case info.Listener && !peer.IsValid():
		return nil, invalidf("peer_address: required on a listener (the address whose segments are signed)")
	case !info.Listener && !peer.IsValid():
		peer = info.Remote.Addr().Unmap()
	case !info.Listener && peer != info.Remote.Addr().Unmap():
		return nil, invalidf("peer_address: %s is not the connection's remote address %s", peer, info.Remote.Addr().Unmap())
	case peer.Is4() != local.Is4() && !local.IsUnspecified():
		return nil, invalidf("peer_address: %s is not of the listener's address family (%s)", peer, info.Local.Addr())
	}
	if err := m.Engine.SetMD5Key(peer, k.GetKey()); err != nil {
		return nil, err
	}
	k.PeerAddress = peer.String()
	return nil, nil
}
