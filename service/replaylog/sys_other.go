//go:build !linux

package replaylog

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

func syncfsUsable() bool { return false }

func syncfs(*os.File) error { panic("replaylog: syncfs is Linux-only") }

// lockDir is a no-op off Linux: run one store per directory.
func lockDir(*os.File) error { return nil }
