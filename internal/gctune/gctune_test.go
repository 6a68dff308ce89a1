package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// restore puts the collector back as the test binary started.
func restore(t *testing.T) {
	pct := debug.SetGCPercent(100)
	lim := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(lim)
	})
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	restore(t)
	s := Apply(env(nil), func() int64 { return 8 << 30 })
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("GC percent in force = %d, want %d", got, Percent)
	}
	if got := debug.SetMemoryLimit(-1); got != 4<<30 {
		t.Errorf("memory limit in force = %d, want half of 8 GiB", got)
	}
	if s.Percent != Percent || s.MemoryLimit != 4<<30 || len(s.FromEnv) != 0 {
		t.Errorf("settings = %+v", s)
	}
	if want := "GOGC=400, memory limit 4096 MiB"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestEnvironmentWins(t *testing.T) {
	restore(t)
	// What the runtime would have read from GOGC=150 GOMEMLIMIT=1GiB.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	s := Apply(env(map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}), func() int64 { return 8 << 30 })
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("GC percent in force = %d, want GOGC's 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit in force = %d, want GOMEMLIMIT's 1 GiB", got)
	}
	if s.Percent != 150 || s.MemoryLimit != 1<<30 || len(s.FromEnv) != 2 {
		t.Errorf("settings = %+v", s)
	}
}

func TestEnvironmentTurnsCollectorOff(t *testing.T) {
	restore(t)
	debug.SetGCPercent(-1) // what the runtime would have read from GOGC=off
	s := Apply(env(map[string]string{"GOGC": "off"}), func() int64 { return 8 << 30 })
	if got := debug.SetGCPercent(100); got != -1 {
		t.Errorf("GC percent in force = %d, want off (-1)", got)
	}
	if want := "GOGC=off, memory limit 4096 MiB (from GOGC)"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestUnknownMemorySetsNoLimit(t *testing.T) {
	restore(t)
	s := Apply(env(nil), func() int64 { return 0 })
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit in force = %d, want none", got)
	}
	if s.MemoryLimit != 0 || s.String() != "GOGC=400, memory limit none" {
		t.Errorf("settings = %+v (%s)", s, s)
	}
}

func TestMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Memory reads Linux's sysinfo and cgroup files")
	}
	if m := Memory(); m < 64<<20 {
		t.Errorf("Memory() = %d bytes; a machine that runs these tests has more", m)
	}
}
