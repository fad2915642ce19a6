package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version is the release, set at link time
// (-ldflags "-X main.version=v1.2.3"); otherwise the module version the
// go command stamped, "(devel)" in a build from a checkout.
var version = ""

// buildInfo is what `tcpstated --version` prints and tcpstated_build_info
// carries.
type buildInfo struct {
	version, revision, goVersion string
	modified                     bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: version, revision: "unknown", goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.version == "" {
			b.version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.revision = s.Value
			case "vcs.modified":
				b.modified = s.Value == "true"
			}
		}
	}
	if b.version == "" {
		b.version = "(devel)"
	}
	return b
}

func (b buildInfo) String() string {
	rev := b.revision
	if b.modified {
		rev += "-modified"
	}
	return fmt.Sprintf("tcpstated %s (revision %s, %s, %s/%s)", b.version, rev, b.goVersion, runtime.GOOS, runtime.GOARCH)
}

// registerBuildInfo adds tcpstated_build_info: always 1, with the build
// as labels.
func registerBuildInfo(reg prometheus.Registerer, b buildInfo) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tcpstated_build_info", Help: "Always 1; the labels say which build of tcpstated runs.",
	}, []string{"version", "revision", "goversion"})
	rev := b.revision
	if b.modified {
		rev += "-modified"
	}
	g.WithLabelValues(b.version, rev, b.goVersion).Set(1)
	reg.MustRegister(g)
}
