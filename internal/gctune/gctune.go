// Package gctune sets the Go garbage collector for the Spool server.
//
// A server's Go heap is mostly short-lived garbage (request bodies, answers,
// job records on their way to the store) around a live heap of the jobs not
// yet finished. At the runtime's default (GOGC=100) the collector runs each
// time the heap has grown by its live size, which on a live heap of tens of
// megabytes means tens of collections a second under load. After every
// collection the server sets GOGC from the live heap instead: the next
// collection comes when the heap has grown by max(Headroom, live heap), but
// by at most MaxPercent of it. A heap of up to Headroom/4 live is collected
// as at GOGC=400 (4x less often than by default); one between that and
// Headroom once it has grown by Headroom; a larger one exactly as by
// default. The heap thus takes at most Headroom more memory than with Go's
// default, whatever the backlog.
//
// A soft memory limit of half the memory the process may use (the
// machine's RAM, or its cgroup's limit, v2 or v1, when lower) bounds the whole: near
// it the runtime collects as often as it must to stay under, so a large
// backlog costs CPU, not an out-of-memory kill.
//
// GOGC and GOMEMLIMIT in the environment win, as for any Go program: GOGC
// turns the adaptive setting off.
package gctune

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// Headroom is the least the heap may grow by between two collections,
// when that is at most MaxPercent of its live part.
const Headroom = 256 << 20

// MaxPercent bounds GOGC: a small heap may grow to 5x its live part.
const MaxPercent = 400

// Settings is what Apply decided.
type Settings struct {
	// Adaptive says GOGC follows the live heap (the package comment);
	// Percent is then what it was set to first.
	Adaptive bool
	Percent  int // GOGC in force (-1: off)
	// MemoryLimit is the soft limit in bytes; 0: none.
	MemoryLimit int64
	// FromEnv names the environment variables that were left in force.
	FromEnv []string
}

func (s Settings) String() string {
	lim := "none"
	if s.MemoryLimit > 0 {
		lim = fmt.Sprintf("%d MiB", s.MemoryLimit>>20)
	}
	gogc := strconv.Itoa(s.Percent)
	switch {
	case s.Adaptive:
		gogc = fmt.Sprintf("adaptive (the heap grows by max(%d MiB, its live size), at most %d%% of it, between collections)", Headroom>>20, MaxPercent)
	case s.Percent < 0:
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
// memory the process may use, 0 if unknown (Memory). The adaptive setting
// is started once per process; later calls leave it running.
func Apply(getenv func(string) string, memory func() int64) Settings {
	var s Settings
	if getenv("GOGC") != "" {
		s.FromEnv = append(s.FromEnv, "GOGC")
		s.Percent = currentPercent()
	} else {
		s.Adaptive = true
		s.Percent = process.start(Headroom)
	}
	if getenv("GOMEMLIMIT") != "" {
		s.FromEnv = append(s.FromEnv, "GOMEMLIMIT")
		s.MemoryLimit = debug.SetMemoryLimit(-1) // -1 reads without changing
	} else if m := memory(); m > 0 {
		s.MemoryLimit = m / 2
		debug.SetMemoryLimit(s.MemoryLimit)
	}
	if s.MemoryLimit == math.MaxInt64 { // the runtime's "no limit"
		s.MemoryLimit = 0
	}
	return s
}

// currentPercent reads GOGC: the runtime only tells it when setting it,
// so it is set to off and back.
func currentPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// percentFor is the GOGC that lets a heap of live bytes grow by
// max(headroom, live) before the next collection, within MaxPercent.
func percentFor(live, headroom uint64) int {
	if live == 0 || headroom > math.MaxUint64/100 {
		return MaxPercent
	}
	p := (headroom*100 + live - 1) / live // rounded up
	return int(max(100, min(MaxPercent, p)))
}

// tuner sets GOGC after every collection, from a finalizer that re-arms
// itself: a finalizer runs once its object was found unreachable, that is
// after each collection.
type tuner struct {
	mu       sync.Mutex
	headroom uint64
	running  bool // a sentinel is armed
	stopped  bool
	sample   []metrics.Sample
}

// process is the tuner of this process.
var process tuner

// sentinel is the object whose finalizer runs after each collection (large
// enough not to be a tiny allocation, whose finalizers may never run).
type sentinel struct{ _ [16]byte }

// start sets GOGC for the current live heap and keeps it adjusted after
// every collection. It returns the GOGC set now.
func (t *tuner) start(headroom uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.headroom, t.stopped = headroom, false
	if !t.running {
		t.running = true
		arm(t)
	}
	return t.adjustLocked()
}

func arm(t *tuner) {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			t.running = false
			return
		}
		t.adjustLocked()
		arm(t)
	})
}

// adjustLocked sets GOGC from the live heap the last collection found and
// returns it. Call with t.mu held.
func (t *tuner) adjustLocked() int {
	if t.sample == nil {
		t.sample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	}
	metrics.Read(t.sample)
	p := percentFor(t.sample[0].Value.Uint64(), t.headroom)
	debug.SetGCPercent(p)
	return p
}

// stop leaves GOGC as it is from the next collection on (tests).
func (t *tuner) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
}
