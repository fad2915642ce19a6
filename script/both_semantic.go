package script

import (
	"regexp"
	"strings"
)

// Under --compare=semantic a line that fails on both targets is the same
// failure when what each side did reads the same semantically: the same
// packet (flags but PSH, sequence numbers, ACK and length; not its
// window, its options or the microsecond it left) or the same call result, or, with
// nothing to show, the same reason once times and the engine's own
// commentary are left out. Otherwise every kernel failure differed from
// the engine's by its timestamp alone.

var (
	semAt      = regexp.MustCompile(` at [0-9.]+$`)
	semWin     = regexp.MustCompile(` win [0-9]+`)
	semOptions = regexp.MustCompile(` ?<[^>]*>`)
	semNumber  = regexp.MustCompile(`[0-9]+(\.[0-9]+)?`)
)

// semanticPacket reduces an Actual to what semantic compare judges.
func semanticPacket(s string) string {
	s = semAt.ReplaceAllString(strings.TrimSpace(s), "")
	s = semWin.ReplaceAllString(s, "")
	s = semOptions.ReplaceAllString(s, "")
	f := strings.Fields(s)
	if len(f) > 1 && strings.Trim(f[0], "SFRP.EWU") == "" { // the flags; PSH is not judged
		if f[0] = strings.ReplaceAll(f[0], "P", ""); f[0] == "" {
			f[0] = "."
		}
	}
	return strings.Join(f, " ")
}

// semanticReason is a failure reason without its times and without the
// parenthesised account of what the engine (or the kernel) said.
func semanticReason(s string) string {
	if i := strings.Index(s, " (the engine"); i >= 0 {
		s = s[:i]
	}
	return semNumber.ReplaceAllString(s, "N")
}

// sameSemanticFailure: k and e both failed, in the same way semantically.
func sameSemanticFailure(k, e LineResult) bool {
	if k.Status != StatusFail || e.Status != StatusFail {
		return false
	}
	if k.Actual != "" || e.Actual != "" {
		return semanticPacket(k.Actual) == semanticPacket(e.Actual)
	}
	return semanticReason(k.Reason) == semanticReason(e.Reason)
}
