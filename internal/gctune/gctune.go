// Package gctune sets the Go garbage collector for the Spool server.
//
// A server's Go heap is mostly short-lived garbage (request bodies, answers,
// job records on their way to the store) around a live heap of the jobs not
// yet finished. At the runtime's default (GOGC=100) the collector runs every
// time the heap doubles, which on a small live heap means tens of times a
// second under load. The server therefore lets the heap grow to 5x its live
// size between collections (GOGC=400) and bounds it with a soft memory limit
// instead: half the memory the process may use (the machine's RAM, or its
// cgroup's limit when lower). Below the limit a collection comes four times
// less often; near it the runtime collects as often as it must to stay
// under, so a large backlog costs CPU, not an out-of-memory kill.
//
// GOGC and GOMEMLIMIT in the environment win, as for any Go program.
package gctune

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
)

// Percent is the server's GOGC unless the environment sets one.
const Percent = 400

// Settings is what Apply decided.
type Settings struct {
	Percent     int   // GOGC in force (-1: off)
	MemoryLimit int64 // soft limit in bytes; 0: none
	// FromEnv names the environment variables that were left in force.
	FromEnv []string
}

func (s Settings) String() string {
	lim := "none"
	if s.MemoryLimit > 0 {
		lim = fmt.Sprintf("%d MiB", s.MemoryLimit>>20)
	}
	gogc := strconv.Itoa(s.Percent)
	if s.Percent < 0 {
		gogc = "off"
	}
	str := fmt.Sprintf("GOGC=%s, memory limit %s", gogc, lim)
	if len(s.FromEnv) > 0 {
		str += " (from " + strings.Join(s.FromEnv, ", ") + ")"
	}
	return str
}

// Apply sets the collector as the package comment says and reports what is
// in force. getenv reads the environment (os.Getenv); memory reports the
// memory the process may use, 0 if unknown (Memory).
func Apply(getenv func(string) string, memory func() int64) Settings {
	var s Settings
	if v := getenv("GOGC"); v != "" {
		s.FromEnv = append(s.FromEnv, "GOGC")
		s.Percent = debug.SetGCPercent(-1) // read it back, then restore
		debug.SetGCPercent(s.Percent)
	} else {
		debug.SetGCPercent(Percent)
		s.Percent = Percent
	}
	if getenv("GOMEMLIMIT") != "" {
		s.FromEnv = append(s.FromEnv, "GOMEMLIMIT")
		s.MemoryLimit = debug.SetMemoryLimit(-1) // -1 reads without changing
	} else if m := memory(); m > 0 {
		s.MemoryLimit = m / 2
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	if s.MemoryLimit == int64(^uint64(0)>>1) { // the runtime's "no limit"
		s.MemoryLimit = 0
	}
	return s
}
