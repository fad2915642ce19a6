package script

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tcpstated/tcpstated/fsm"
	"github.com/tcpstated/tcpstated/script/enginetarget"
)

// Engine is what the engine target drives: exactly the methods of
// *fsm.Engine the runner needs, so an engine, or a service session that
// logs every call before passing it on, can run a script.
type Engine = enginetarget.Engine

// Run parses src and runs it on a fresh engine built from the script's
// header options and the buffer options it sets before its first
// connection (see EngineConfig). A syntax error is returned as a
// *ParseError; a script that runs and fails is a report with Passed false.
func Run(src []byte, opts Options) (*Report, error) {
	s, err := ParseDefines(opts.Name, src, opts.defines(src))
	if err != nil {
		return nil, err
	}
	base := defaultConfig()
	if opts.Config != nil {
		base = *opts.Config
	}
	cfg, _, err := s.ProfileConfig(base, opts.Profile)
	if err != nil {
		return nil, err
	}
	return RunScript(fsm.New(cfg), s, opts), nil
}

// RunOn parses src and runs it on e, which the caller built (for example
// with Script.EngineConfig). Script times count from e.Now().
func RunOn(e Engine, src []byte, opts Options) (*Report, error) {
	s, err := ParseDefines(opts.Name, src, opts.defines(src))
	if err != nil {
		return nil, err
	}
	return RunScript(e, s, opts), nil
}

// RunScript runs a parsed script on e, as the engine target, and returns
// its report.
func RunScript(e Engine, s *Script, opts Options) *Report {
	if rep := s.headerError(opts); rep != nil {
		return rep
	}
	want, applied, err := s.ProfileConfig(defaultConfig(), opts.Profile)
	if err != nil {
		return &Report{Script: s.Name, Session: opts.Session, Failure: err.Error(), Error: err.Error(), Lines: []LineResult{}}
	}
	var note string
	if len(s.hdr.cfgSet) > 0 || len(applied) > 0 {
		note = enginetarget.ConfigNote(e, want)
	}
	t := enginetarget.New(e, enginetarget.Options{Applied: applied, ConfigNote: note, MD5Secret: s.hdr.md5Secret, Remote: s.hdr.remoteIP})
	return runTarget(t, s, opts, note)
}

// OptionsConfig applies to base the engine options among a script's
// header options (name without "--" to value, as Setup gives them): --mss
// and the --tcpstated_* options; the others are ignored. An engine served
// as a device under test configures itself with it.
func OptionsConfig(base fsm.Config, options map[string]string) (fsm.Config, error) {
	h := &header{cfg: base}
	for _, name := range slices.Sorted(maps.Keys(options)) {
		v := options[name]
		if spec, ok := headerOption(name); ok && spec.engine {
			if err := spec.apply(h, v); err != nil {
				return base, fmt.Errorf("--%s=%s: %v", name, v, err)
			}
		}
	}
	return h.cfg, nil
}

// EngineConfig is ProfileConfig with the script's own profile.
func (s *Script) EngineConfig(base fsm.Config) (fsm.Config, map[int]string) {
	cfg, applied, _ := s.ProfileConfig(base, "")
	return cfg, applied
}

// ProfileConfig returns the engine configuration a script asks for: base,
// then the behaviour profile (profile, else the script's
// --tcpstated_profile; rfc changes nothing), then the header's engine
// options (--mss and the --tcpstated_* options), then the lines before
// the first listen, connect or inbound packet that configure the engine:
// SO_RCVBUF, SO_SNDBUF and TCP_NODELAY setsockopt calls, and sysctl lines
// that map to a behaviour switch. The engine's configuration is fixed for
// its lifetime, so later such lines cannot take effect and are reported
// as not judged or skipped. The map tells, by event index, what each
// configuring line set.
func (s *Script) ProfileConfig(base fsm.Config, profile string) (fsm.Config, map[int]string, error) {
	if profile == "" && s.hdr != nil {
		profile = s.hdr.profile
	}
	if profile != "" {
		p, ok := fsm.ProfileByName(profile)
		if !ok {
			return base, nil, fmt.Errorf("unknown profile %q", profile)
		}
		if err := p.Apply(&base); err != nil {
			return base, nil, err
		}
	}
	h := &header{cfg: base}
	for _, o := range s.Options {
		if spec, ok := headerOption(o.Name); ok && spec.engine {
			_ = spec.apply(h, o.Value) // validated by Parse
		}
	}
	cfg := h.cfg
	applied := map[int]string{}
	for i, ev := range s.Events {
		if ev.Kind == EventPacketIn {
			break
		}
		if ev.Kind == EventSkip && ev.Skip.Kind == SkipShell {
			if note, skip := applySysctl(&cfg, ev.Skip.Body); note != "" {
				applied[i] = note
			} else if skip != "" {
				applied[i] = skip
			}
			continue
		}
		if ev.Kind != EventSyscall {
			continue
		}
		sc := ev.Syscall
		if sc.Name == "listen" || sc.Name == "connect" {
			break
		}
		if sc.Name != "setsockopt" || len(sc.Args) < 4 {
			continue
		}
		if r, ok := evalInt(sc.Ret); !ok || r != 0 {
			continue
		}
		v, ok := evalInt(sc.Args[3])
		if !ok {
			continue
		}
		if note := enginetarget.Sockopt(&cfg, optName(sc.Args[2]), v); note != "" {
			applied[i] = note
		}
	}
	return cfg, applied, nil
}
