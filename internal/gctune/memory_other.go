//go:build !linux

package gctune

// Memory is 0 (unknown) outside Linux: no memory limit is set there.
func Memory() int64 { return 0 }
