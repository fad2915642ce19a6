//go:build !linux

package filestore

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

func syncfsUsable() bool { return false }

func syncfs(*os.File) error { panic("filestore: syncfs is Linux-only") }

// lockDir is a no-op off Linux: run one store per directory.
func lockDir(*os.File) error { return nil }

// The page-cache hints are Linux's; elsewhere the cache keeps the pages.
func startWriteback(*os.File, int64, int64) error { return nil }

func dropCached(*os.File, int64, int64) error { return nil }
