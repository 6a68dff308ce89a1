package engine

import (
	"testing"
	"time"
)

// FuzzParseCron: no expression or time zone makes parsing panic, and an
// accepted expression fires strictly later than the time asked about,
// again and again.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/15 9-17 * * MON-FRI", "0 30 2 * * *", "@daily", "@every 10s",
		"@every 1h30m", "0 0 29 2 *", "0 0 31 2 *", "5-1 * * * *", "*/0 * * * *", "@every -5s", "CRON_TZ=UTC * * * * *",
		"? ? ? ? ?", "0 0 1 1 * 2030", "L * * * *", "1,2,3-7/2 * * JAN,DEC SUN"} {
		f.Add(s, "UTC")
		f.Add(s, "America/New_York")
	}
	f.Add("30 2 * * *", "Europe/Atlantis")
	f.Add("30 2 * * *", "../../etc/passwd")
	now := time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr, tz string) {
		spec, err := parseCron(expr, tz, now)
		if err != nil {
			return
		}
		at := now
		for range 3 {
			next := spec.next(at)
			if next.IsZero() {
				return
			}
			if !next.After(at) {
				t.Fatalf("%q in %q: next after %s is %s", expr, tz, at, next)
			}
			at = next
		}
	})
}
