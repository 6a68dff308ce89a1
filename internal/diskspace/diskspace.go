// Package diskspace guards the free space of the volume that holds the
// embedded store's data directory. Below a low-water mark new work
// (enqueues, publishes) is refused with spool.DiskFullError, while
// everything that frees space (leases, acks, cancels, purges) goes on;
// work is admitted again as soon as a reading shows space above the mark.
//
// Readings are cheap (one statfs) and reused for Config.Interval, so the
// check costs an atomic load on the hot path.
package diskspace

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolq/spool"
)

// Usage is a reading of a volume.
type Usage struct {
	// Free is the space an unprivileged writer may still use, in bytes.
	Free uint64
	// Total is the size of the volume, in bytes.
	Total uint64
}

// StatFunc reads the usage of the volume that holds dir.
type StatFunc func(dir string) (Usage, error)

// DefaultMarkBytes and DefaultMarkPercent make the default mark: the
// smaller of 1 GiB and 5% of the volume.
const (
	DefaultMarkBytes   = 1 << 30
	DefaultMarkPercent = 5
)

// DefaultInterval is how long a reading is reused.
const DefaultInterval = time.Second

// RetryAfter is the Retry-After of a refusal, in seconds: how long space
// takes to come back is not knowable; this is how often it is worth
// asking.
const RetryAfter = 10

// Mark is a low-water mark: a number of bytes, or a percentage of the
// volume. The zero Mark is the default (the smaller of DefaultMarkBytes
// and DefaultMarkPercent of the volume).
type Mark struct {
	bytes   uint64
	percent float64
	set     bool
}

// Bytes is a mark of n bytes; 0 turns the guard off.
func Bytes(n uint64) Mark { return Mark{bytes: n, set: true} }

// Percent is a mark of p percent of the volume (0 < p < 100).
func Percent(p float64) Mark { return Mark{percent: p, set: true} }

// Off reports whether the mark turns the guard off.
func (m Mark) Off() bool { return m.set && m.bytes == 0 && m.percent == 0 }

// For is the mark in bytes on a volume of total bytes.
func (m Mark) For(total uint64) uint64 {
	switch {
	case !m.set:
		return min(DefaultMarkBytes, total/100*DefaultMarkPercent)
	case m.percent > 0:
		return uint64(float64(total) * m.percent / 100)
	}
	return m.bytes
}

func (m Mark) String() string {
	switch {
	case !m.set:
		return fmt.Sprintf("min(%s, %d%%)", FormatBytes(DefaultMarkBytes), DefaultMarkPercent)
	case m.Off():
		return "off"
	case m.percent > 0:
		return strconv.FormatFloat(m.percent, 'f', -1, 64) + "%"
	}
	return FormatBytes(m.bytes)
}

// ParseMark reads a mark as the --min-free-space flag writes it: "" for
// the default, "off" (or a mark of 0) for none, a size ("512MiB", "2GB",
// "1073741824") or a percentage of the volume ("5%").
func ParseMark(s string) (Mark, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "":
		return Mark{}, nil
	case "off", "none":
		return Bytes(0), nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f >= 100 {
			return Mark{}, fmt.Errorf("%q: a percentage must be a number from 0 to under 100", s)
		}
		if f == 0 {
			return Bytes(0), nil
		}
		return Percent(f), nil
	}
	n, err := ParseBytes(s)
	if err != nil {
		return Mark{}, err
	}
	return Bytes(n), nil
}

var units = []struct {
	suffix string
	mult   uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseBytes reads a size: a number of bytes, optionally with a unit (B,
// KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024).
func ParseBytes(s string) (uint64, error) {
	num, mult := strings.TrimSpace(s), uint64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: write bytes, or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB, a percentage (5%%), or off", s)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// FormatBytes writes n in the largest binary unit that keeps it readable.
func FormatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatUint(n, 10) + " B"
}

// Config configures a Guard.
type Config struct {
	// Dir is a directory on the guarded volume (the data directory).
	Dir string
	// Mark is the low-water mark (zero: the default).
	Mark Mark
	// Stat reads the volume (default: Stat, statfs(2)).
	Stat StatFunc
	// Now is the clock readings are dated by (default time.Now).
	Now func() time.Time
	// Interval is how long a reading is reused (default DefaultInterval;
	// negative: never, every check reads the volume).
	Interval time.Duration
	// Logger receives one message when the volume goes below the mark and
	// one when it is back above it (default: discard).
	Logger *slog.Logger
}

// Guard answers whether the volume has room for new work.
type Guard struct {
	cfg   Config
	state atomic.Pointer[reading]
	mu    sync.Mutex // one reader of the volume at a time
}

// reading is one look at the volume.
type reading struct {
	at    time.Time
	usage Usage
	mark  uint64
	err   error // the volume could not be read
}

func (r *reading) low() bool { return r.err == nil && r.usage.Free < r.mark }

// New returns a Guard and takes a first reading: an error says the volume
// cannot be read at all.
func New(cfg Config) (*Guard, error) {
	if cfg.Dir == "" {
		return nil, errors.New("diskspace: Config.Dir is required")
	}
	if cfg.Stat == nil {
		cfg.Stat = Stat
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg}
	r := g.read()
	if r.err != nil {
		return nil, fmt.Errorf("diskspace: reading the free space of %s: %w", cfg.Dir, r.err)
	}
	if r.low() {
		g.cfg.Logger.Warn("free disk space is below the mark: enqueues and publishes are refused until space is freed",
			"dir", cfg.Dir, "free", FormatBytes(r.usage.Free), "mark", FormatBytes(r.mark), "total", FormatBytes(r.usage.Total))
	}
	return g, nil
}

// read takes a reading and keeps it.
func (g *Guard) read() *reading {
	u, err := g.cfg.Stat(g.cfg.Dir)
	r := &reading{at: g.cfg.Now(), usage: u, err: err}
	if err == nil {
		r.mark = g.cfg.Mark.For(u.Total)
	}
	g.state.Store(r)
	return r
}

// current returns a reading no older than the interval.
func (g *Guard) current() *reading {
	r := g.state.Load()
	if r != nil && g.cfg.Interval > 0 && g.cfg.Now().Sub(r.at) < g.cfg.Interval {
		return r
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if again := g.state.Load(); again != r { // another caller read it meanwhile
		return again
	}
	was := r
	r = g.read()
	switch {
	case r.err != nil && (was == nil || was.err == nil):
		g.cfg.Logger.Warn("cannot read the free disk space; enqueues are admitted", "dir", g.cfg.Dir, "error", r.err)
	case r.low() && (was == nil || !was.low()):
		g.cfg.Logger.Warn("free disk space is below the mark: enqueues and publishes are refused until space is freed",
			"dir", g.cfg.Dir, "free", FormatBytes(r.usage.Free), "mark", FormatBytes(r.mark), "total", FormatBytes(r.usage.Total))
	case !r.low() && was != nil && was.low():
		g.cfg.Logger.Info("free disk space is back above the mark: enqueues and publishes are admitted again",
			"dir", g.cfg.Dir, "free", FormatBytes(r.usage.Free), "mark", FormatBytes(r.mark))
	}
	return r
}

// Check returns nil if the volume has room for new work, else a
// *spool.DiskFullError. A volume that cannot be read is admitted (and
// logged once): refusing all work on a failed statfs would be an outage
// of its own.
func (g *Guard) Check() error {
	if g == nil || g.cfg.Mark.Off() {
		return nil
	}
	r := g.current()
	if !r.low() {
		return nil
	}
	return &spool.DiskFullError{Free: r.usage.Free, Mark: r.mark, RetryAfter: RetryAfter}
}

// Usage returns the latest reading of the volume and the mark in bytes.
func (g *Guard) Usage() (Usage, uint64, error) {
	r := g.current()
	return r.usage, r.mark, r.err
}
