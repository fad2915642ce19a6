package script

import (
	"fmt"
	"strings"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/internal/shellwords"
)

// parseSysctl reads a backquoted "sysctl -w NAME=VALUE" line, FreeBSD's
// and Linux's way for a script to set a stack's choices.
func parseSysctl(cmd string) (name, value string, ok bool) {
	f, err := shellwords.Split(cmd)
	if err != nil || len(f) != 3 || f[0] != "sysctl" || f[1] != "-w" {
		return "", "", false
	}
	name, value, ok = strings.Cut(f[2], "=")
	return name, value, ok && name != ""
}

// applySysctl sets the behaviour switch a sysctl line maps to. It returns
// the note for the report, or why the line cannot be honoured.
func applySysctl(cfg *fsm.Config, cmd string) (note string, skip string) {
	name, value, ok := parseSysctl(cmd)
	if !ok {
		return "", ""
	}
	sw, v, ok := fsm.SysctlSetting(name, value)
	if !ok {
		return "", fmt.Sprintf("skipped: no behaviour switch of tcpstated maps %s (the line is not run)", name)
	}
	if err := cfg.SetSwitch(sw, v); err != nil {
		return "", fmt.Sprintf("skipped: %s=%s: %v", name, value, err)
	}
	return fmt.Sprintf("configures the engine: switch %s=%s (%s)", sw, v, name), ""
}

// sysctlSkip is the reason a sysctl line that comes after the engine's
// configuration was fixed is not honoured.
func sysctlSkip(cmd string) string {
	name, _, ok := parseSysctl(cmd)
	if !ok {
		return ""
	}
	if sw, ok := fsm.SysctlSwitch(name); ok {
		return fmt.Sprintf("skipped: %s sets switch %s, but the engine's configuration is fixed once the first connection exists; set it before the first listen, connect or packet", name, sw)
	}
	return fmt.Sprintf("skipped: no behaviour switch of tcpstated maps %s (the line is not run)", name)
}
