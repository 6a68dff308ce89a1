package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
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

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{1 * mib, 256 * mib, MaxPercent}, // a small heap: GOGC=400
		{64 * mib, 256 * mib, 400},
		{100 * mib, 256 * mib, 256}, // grows by the headroom
		{255 * mib, 256 * mib, 101}, // rounded up: never less room than asked
		{256 * mib, 256 * mib, 100},
		{4096 * mib, 256 * mib, 100}, // a big heap: Go's default
		{0, 256 * mib, MaxPercent},
		{1, math.MaxUint64, MaxPercent},
	} {
		if got := percentFor(c.live, c.headroom); got != c.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	restore(t)
	t.Cleanup(process.stop)
	s := Apply(env(nil), func() int64 { return 8 << 30 })
	if !s.Adaptive || s.Percent < 100 || len(s.FromEnv) != 0 {
		t.Errorf("settings = %+v", s)
	}
	if got := currentPercent(); got != s.Percent {
		t.Errorf("GC percent in force = %d, want the %d reported", got, s.Percent)
	}
	if got := debug.SetMemoryLimit(-1); got != 4<<30 {
		t.Errorf("memory limit in force = %d, want half of 8 GiB", got)
	}
	want := "GOGC=adaptive (the heap grows by max(256 MiB, its live size), at most 400% of it, between collections), memory limit 4096 MiB"
	if s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

// After each collection GOGC follows the live heap: Go's default while the
// live heap is over the headroom, more once it is small again.
func TestAdaptiveFollowsLiveHeap(t *testing.T) {
	restore(t)
	var tn tuner
	t.Cleanup(tn.stop)
	const headroom = 32 << 20
	waitFor := func(ok func(int) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			runtime.GC() // the finalizer runs after a collection, in its own goroutine
			time.Sleep(5 * time.Millisecond)
			if p := currentPercent(); ok(p) {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("GOGC is %d; want %s", p, what)
			}
		}
	}
	live := make([]byte, 64<<20)
	for i := range live {
		live[i] = 1 // touched, so it is really there
	}
	tn.start(headroom)
	waitFor(func(p int) bool { return p == 100 }, "100 with 64 MiB live")
	runtime.KeepAlive(live)
	waitFor(func(p int) bool { return p >= 300 }, "at least 300 with a few MiB live")
}

func TestEnvironmentWins(t *testing.T) {
	restore(t)
	// What the runtime would have read from GOGC=150 GOMEMLIMIT=1GiB.
	debug.SetGCPercent(150)
	debug.SetMemoryLimit(1 << 30)
	s := Apply(env(map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}), func() int64 { return 8 << 30 })
	if got := currentPercent(); got != 150 {
		t.Errorf("GC percent in force = %d, want GOGC's 150", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit in force = %d, want GOMEMLIMIT's 1 GiB", got)
	}
	if s.Adaptive || s.Percent != 150 || s.MemoryLimit != 1<<30 || len(s.FromEnv) != 2 {
		t.Errorf("settings = %+v", s)
	}
	if want := "GOGC=150, memory limit 1024 MiB (from GOGC, GOMEMLIMIT)"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestEnvironmentTurnsCollectorOff(t *testing.T) {
	restore(t)
	debug.SetGCPercent(-1) // what the runtime would have read from GOGC=off
	s := Apply(env(map[string]string{"GOGC": "off"}), func() int64 { return 8 << 30 })
	if got := currentPercent(); got != -1 {
		t.Errorf("GC percent in force = %d, want off (-1)", got)
	}
	if want := "GOGC=off, memory limit 4096 MiB (from GOGC)"; s.String() != want {
		t.Errorf("String() = %q, want %q", s.String(), want)
	}
}

func TestUnknownMemorySetsNoLimit(t *testing.T) {
	restore(t)
	t.Cleanup(process.stop)
	s := Apply(env(nil), func() int64 { return 0 })
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory limit in force = %d, want none", got)
	}
	if s.MemoryLimit != 0 || !strings.HasSuffix(s.String(), "memory limit none") {
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
