package diskspace

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

const (
	mib = 1 << 20
	gib = 1 << 30
)

func TestParseMark(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in       string
		total    uint64
		want     uint64
		off      bool
		str, err string
	}{
		{in: "", total: 100 * gib, want: gib, str: "min(1.0 GiB, 5%)"},
		{in: "", total: 4 * gib, want: 4 * gib / 100 * 5},
		{in: "0", total: 100 * gib, want: 0, off: true, str: "off"},
		{in: "0%", total: 100 * gib, want: 0, off: true},
		{in: "off", total: 100 * gib, want: 0, off: true},
		{in: "OFF", total: 100 * gib, want: 0, off: true},
		{in: "512MiB", total: 100 * gib, want: 512 * mib, str: "512.0 MiB"},
		{in: " 2GB ", total: 100 * gib, want: 2e9},
		{in: "1048576", total: 100 * gib, want: mib},
		{in: "10 KiB", total: 100 * gib, want: 10 << 10},
		{in: "10%", total: 100 * gib, want: 10 * gib, str: "10%"},
		{in: "2.5%", total: 1000, want: 25},
		{in: "100%", err: "percentage"},
		{in: "-1%", err: "percentage"},
		{in: "x%", err: "percentage"},
		{in: "-5", err: "not a size"},
		{in: "5 parsecs", err: "not a size"},
		{in: "1.5GiB", err: "not a size"},
		{in: "18446744073709551615GiB", err: "too large"},
	} {
		m, err := ParseMark(c.in)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, "ParseMark(%q)", c.in)
			continue
		}
		require.NoError(t, err, "ParseMark(%q)", c.in)
		require.Equal(t, c.want, m.For(c.total), "ParseMark(%q).For(%d)", c.in, c.total)
		require.Equal(t, c.off, m.Off(), "ParseMark(%q).Off()", c.in)
		if c.str != "" {
			require.Equal(t, c.str, m.String())
		}
	}
}

// fakeVolume is a volume whose free space a test sets.
type fakeVolume struct {
	free  atomic.Uint64
	fail  atomic.Bool
	stats atomic.Int64
}

func (v *fakeVolume) stat(string) (Usage, error) {
	v.stats.Add(1)
	if v.fail.Load() {
		return Usage{}, errors.New("statfs: input/output error")
	}
	return Usage{Free: v.free.Load(), Total: 100 * gib}, nil
}

// fakeClock is a clock a test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestGuardRefusesBelowMarkAndAdmitsWhenSpaceIsBack(t *testing.T) {
	t.Parallel()
	var v fakeVolume
	var clk fakeClock
	v.free.Store(10 * gib)
	g, err := New(Config{Dir: "/data", Stat: v.stat, Now: clk.now, Interval: time.Second})
	require.NoError(t, err)
	require.NoError(t, g.Check())

	v.free.Store(gib - 1) // below the default mark, min(1 GiB, 5 GiB)
	require.NoError(t, g.Check(), "a reading is reused for the interval")
	clk.advance(time.Second)
	err = g.Check()
	var df *spool.DiskFullError
	require.ErrorAs(t, err, &df)
	require.ErrorIs(t, err, spool.ErrDiskFull)
	require.Equal(t, spool.CodeDiskFull, spool.Code(err))
	require.Equal(t, uint64(gib-1), df.Free)
	require.Equal(t, uint64(gib), df.Mark)
	require.Positive(t, df.RetryAfter)
	require.Contains(t, err.Error(), "below the mark of 1024.0 MiB")

	v.free.Store(gib)
	clk.advance(time.Second)
	require.NoError(t, g.Check(), "admitted again once space is back, without a restart")

	n := v.stats.Load()
	for range 1000 {
		require.NoError(t, g.Check())
	}
	require.Equal(t, n, v.stats.Load(), "checks within the interval do not read the volume")
}

func TestGuardAdmitsWhenTheVolumeCannotBeRead(t *testing.T) {
	t.Parallel()
	var v fakeVolume
	v.free.Store(0)
	v.fail.Store(true)
	_, err := New(Config{Dir: "/data", Stat: v.stat})
	require.ErrorContains(t, err, "input/output error", "a volume unreadable at start is an error")

	v.fail.Store(false)
	g, err := New(Config{Dir: "/data", Stat: v.stat, Interval: -1})
	require.NoError(t, err)
	require.ErrorIs(t, g.Check(), spool.ErrDiskFull)
	v.fail.Store(true)
	require.NoError(t, g.Check(), "a failed reading later admits work")
}

func TestGuardOff(t *testing.T) {
	t.Parallel()
	var v fakeVolume
	g, err := New(Config{Dir: "/data", Stat: v.stat, Mark: Bytes(0), Interval: -1})
	require.NoError(t, err)
	require.NoError(t, g.Check())
	var nilGuard *Guard
	require.NoError(t, nilGuard.Check())
}

func TestStatReadsTheVolume(t *testing.T) {
	t.Parallel()
	u, err := Stat(t.TempDir())
	require.NoError(t, err)
	require.Positive(t, u.Total)
	require.LessOrEqual(t, u.Free, u.Total)
}
