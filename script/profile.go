package script

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
)

// profileOS returns the OS name a behaviour profile defines for #ifdef
// lines: scripts written for several stacks test "#ifdef FreeBSD" for the
// choices FreeBSD makes where the RFCs leave one open.
func profileOS(name string) (string, error) {
	if _, ok := fsm.ProfileByName(name); !ok {
		var names []string
		for _, p := range fsm.Profiles() {
			names = append(names, p.Name)
		}
		return "", fmt.Errorf("unknown profile %q: want one of %s", name, strings.Join(names, ", "))
	}
	switch name {
	case "freebsd":
		return "FreeBSD", nil
	case "linux":
		return "Linux", nil
	}
	return "", nil
}

// headerProfile finds --tcpstated_profile=NAME in the raw text. The
// profile decides which #ifdef branches exist, so it is read before the
// conditionals are applied and the script is parsed.
var headerProfile = regexp.MustCompile(`(?m)^[ \t]*--(?:[^\n]*[ \t])?tcpstated_profile=([A-Za-z0-9_]+)`)

// defines returns the names a run's #ifdef lines see: the caller's, plus
// the OS name of the profile in force (the caller's, else the script's).
func (o *Options) defines(src []byte) []string {
	profile := o.Profile
	if profile == "" {
		if m := headerProfile.FindSubmatch(src); m != nil {
			profile = string(m[1])
		}
	}
	os, err := profileOS(profile)
	if err != nil || os == "" {
		return o.Defines // an unknown name is reported by the header option
	}
	return append(append([]string(nil), o.Defines...), os)
}
