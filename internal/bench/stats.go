package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of samples by the
// nearest-rank method on the exactly sorted samples: the smallest sample
// that at least p% of the samples do not exceed. It sorts samples in place
// and returns 0 for none. Counts in a bench run are small (at most some
// hundred thousand), so every sample is kept: no buckets, no estimate.
func Percentile(samples []float64, p float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	if !slices.IsSorted(samples) {
		slices.Sort(samples)
	}
	rank := int(math.Ceil(p / 100 * float64(len(samples))))
	rank = min(max(rank, 1), len(samples))
	return samples[rank-1]
}

// Median returns the median of xs (the mean of the two middle values for
// an even count), 0 for none. xs is not changed.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// NewMetric summarises the figures of every run of one metric.
func NewMetric(unit, better string, runs []float64) Metric {
	m := Metric{Unit: unit, Better: better, Runs: slices.Clone(runs)}
	if len(runs) > 0 {
		m.Median = Median(runs)
		m.Min = slices.Min(runs)
		m.Max = slices.Max(runs)
	}
	return m
}

// Directions of Metric.Better. A metric with neither is informational
// (rejections per second, say): Compare prints no ratio for it.
const (
	Higher = "higher"
	Lower  = "lower"
)

// Units of Metric.Unit.
const (
	UnitJobsPerSec = "jobs/s"
	UnitPerSec     = "/s"
	UnitMs         = "ms"
	UnitMiB        = "MiB"
	UnitCount      = "count"
)

// ms converts a duration to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is n events over d, per second.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// runFigures is what one run of a scenario measured, metric name → value.
type runFigures map[string]float64

// metricSpec names one metric of a scenario, its unit and direction.
type metricSpec struct {
	Name, Unit, Better string
}

// collect turns the figures of every run into Metrics, in spec order;
// a metric that no run measured is left out.
func collect(specs []metricSpec, runs []runFigures) map[string]Metric {
	out := make(map[string]Metric, len(specs))
	for _, s := range specs {
		var xs []float64
		for _, r := range runs {
			if v, ok := r[s.Name]; ok {
				xs = append(xs, v)
			}
		}
		if len(xs) > 0 {
			out[s.Name] = NewMetric(s.Unit, s.Better, xs)
		}
	}
	return out
}
