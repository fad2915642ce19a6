package script

import (
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
)

// TCP-MD5 (RFC 2385) in scripts: --tcp_md5_secret=KEY is packetdrill's key
// for both directions. An inbound line's "md5 valid" option is sent as a
// signature computed with it (any other md5 text as a zero digest, which
// the engine must refuse); setsockopt TCP_MD5SIG on a socket makes the
// engine use the key for the script's remote address.

func init() {
	headerOptions["tcp_md5_secret"] = optSpec{apply: func(h *header, v string) error {
		h.md5Secret = v
		return nil
	}}
}

// isMD5Opt reports whether an option as written is packetdrill's md5.
func isMD5Opt(o TCPOpt) bool {
	return o.Kind == OptOther && strings.HasPrefix(strings.TrimSpace(o.Text), "md5")
}

// md5Valid reports whether an "md5 ..." option asks for a valid signature.
func md5Valid(o TCPOpt) bool {
	return strings.Contains(o.Text, "valid") && !strings.Contains(o.Text, "invalid")
}

// signInbound fills in the signature of an inbound packet that has an md5
// option, when the script asks for a valid one and has a secret.
func (r *runner) signInbound(p *Packet, pkt []byte) {
	for _, o := range p.Opts {
		if isMD5Opt(o) {
			if md5Valid(o) && r.s.hdr != nil && r.s.hdr.md5Secret != "" {
				fsm.SignMD5(pkt, []byte(r.s.hdr.md5Secret))
			}
			return
		}
	}
}

// checkMD5 judges an emitted packet's TCP-MD5 signature against a > line
// that writes "md5 valid": it must be there and verify under the script's
// secret (RFC 2385 §2.0), in every compare mode.
func (r *runner) checkMD5(p *Packet, o *outPkt) []string {
	want := false
	for _, opt := range p.Opts {
		want = want || (isMD5Opt(opt) && md5Valid(opt))
	}
	if !want || r.s.hdr == nil || r.s.hdr.md5Secret == "" {
		return nil
	}
	src, dst, tcp, err := fsm.ParsePacket(o.data)
	if err != nil {
		return []string{"md5: the packet does not decode: " + err.Error()}
	}
	if !o.seg.Options.HasMD5 {
		return []string{"md5: expected a valid TCP-MD5 signature, the packet has none"}
	}
	if d := fsm.MD5Digest(src, dst, tcp, []byte(r.s.hdr.md5Secret)); d != o.seg.Options.MD5 {
		return []string{"md5: the TCP-MD5 signature does not verify with --tcp_md5_secret"}
	}
	return nil
}
