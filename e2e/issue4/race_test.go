//go:build race

package issue4

func init() { buildFlags = append(buildFlags, "-race") }
