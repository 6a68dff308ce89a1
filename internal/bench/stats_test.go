package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	tests := []struct {
		name    string
		samples []float64
		p       float64
		want    float64
	}{
		{"none", nil, 50, 0},
		{"one", []float64{7}, 99.9, 7},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p99.9 of 1..100", hundred, 99.9, 100},
		{"max of 1..100", hundred, 100, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"tiny p is the minimum", []float64{3, 1, 2}, 0.001, 1},
		{"p50 of 4 is the 2nd", []float64{4, 1, 3, 2}, 50, 2},
		{"p51 of 4 is the 3rd", []float64{4, 1, 3, 2}, 51, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := append([]float64(nil), tt.samples...)
			require.Equal(t, tt.want, Percentile(s, tt.p))
		})
	}
}

func TestMedianAndMetric(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0.0, Median(nil))
	require.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	runs := []float64{30, 10, 20}
	m := NewMetric(UnitJobsPerSec, Higher, runs)
	require.Equal(t, Metric{Unit: UnitJobsPerSec, Better: Higher, Median: 20, Min: 10, Max: 30, Runs: []float64{30, 10, 20}}, m)
	require.Equal(t, []float64{30, 10, 20}, runs, "the runs keep their order")
}

func TestPayload(t *testing.T) {
	t.Parallel()
	for _, size := range []int{MinPayloadSize, 100, 1000} {
		for _, seq := range []int64{0, 42, 999_999_999_999} {
			p := Payload(seq, size)
			require.Len(t, p, size)
			require.True(t, json.Valid(p), "%s", p)
			var s string
			require.NoError(t, json.Unmarshal(p, &s))
			got, err := PayloadSeq(p)
			require.NoError(t, err)
			require.Equal(t, seq, got)
		}
	}
	require.Len(t, Payload(1, 3), MinPayloadSize, "too small a size is raised")
	_, err := PayloadSeq([]byte(`{"a":1}`))
	require.Error(t, err)
	_, err = PayloadSeq([]byte(`"abcdefghijkl xx"`))
	require.Error(t, err)
}

func TestParseVmRSS(t *testing.T) {
	t.Parallel()
	status := "Name:\tspool\nVmPeak:\t  999 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
	v, err := parseVmRSS([]byte(status))
	require.NoError(t, err)
	require.Equal(t, 20.0, v)
	_, err = parseVmRSS([]byte("Name:\tx\n"))
	require.Error(t, err)
}

func TestRatioDirection(t *testing.T) {
	t.Parallel()
	hi := func(v float64) Metric { return NewMetric(UnitJobsPerSec, Higher, []float64{v}) }
	lo := func(v float64) Metric { return NewMetric(UnitMs, Lower, []float64{v}) }
	tests := []struct {
		name        string
		spool, peer Metric
		want        float64
		ok          bool
	}{
		{"more jobs/s is better", hi(2000), hi(1000), 2, true},
		{"fewer jobs/s is worse", hi(500), hi(1000), 0.5, true},
		{"less latency is better", lo(1), lo(4), 4, true},
		{"more latency is worse", lo(4), lo(1), 0.25, true},
		{"informational", NewMetric(UnitPerSec, "", []float64{1}), NewMetric(UnitPerSec, "", []float64{2}), 0, false},
		{"directions disagree", hi(1), lo(1), 0, false},
		{"peer has 0 jobs/s", hi(1), hi(0), 0, false},
		{"spool has 0 ms", lo(0), lo(1), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Ratio(tt.spool, tt.peer)
			require.Equal(t, tt.ok, ok)
			require.InDelta(t, tt.want, got, 1e-9)
		})
	}
}

func sampleReport(system string, jobsPerSec, p99 float64) *Report {
	return &Report{
		System:     system,
		Durability: "test",
		Started:    time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Params:     map[string]string{"runs": "1"},
		Scenarios: []ScenarioResult{
			{Name: ScenarioEnqueueSingle, Metrics: map[string]Metric{
				MetricJobsPerSec: NewMetric(UnitJobsPerSec, Higher, []float64{jobsPerSec}),
				MetricEnqueueP99: NewMetric(UnitMs, Lower, []float64{p99}),
			}},
			{Name: ScenarioBackpressure, Skipped: "no bounded queues"},
		},
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	spool := sampleReport("spool-embedded", 3000, 2)
	peer := sampleReport("peer-a", 1000, 8)
	var b bytes.Buffer
	require.NoError(t, Compare(&b, spool, peer))
	out := b.String()
	require.Contains(t, out, "ratio > 1 means Spool did better")
	lines := strings.Split(out, "\n")
	find := func(metric string) string {
		for _, l := range lines {
			if strings.Contains(l, " "+metric+" ") {
				return l
			}
		}
		t.Fatalf("no line for %s in:\n%s", metric, out)
		return ""
	}
	require.True(t, strings.HasSuffix(find(MetricJobsPerSec), "3.00x"), "higher is better: spool/peer\n%s", out)
	require.True(t, strings.HasSuffix(find(MetricEnqueueP99), "4.00x"), "lower is better: peer/spool\n%s", out)
	require.Contains(t, out, "skipped: no bounded queues")
}

func TestReportRoundTrip(t *testing.T) {
	t.Parallel()
	r := sampleReport("spool", 1234.5, 2)
	var b bytes.Buffer
	require.NoError(t, WriteJSON(&b, r))
	back, err := ReadReport(&b)
	require.NoError(t, err)
	require.Equal(t, r, back)

	b.Reset()
	require.NoError(t, WriteCSV(&b, r))
	require.Equal(t, `system,scenario,metric,unit,better,median,min,max,runs
spool,enqueue_single,jobs_per_s,jobs/s,higher,1234.5,1234.5,1234.5,1234.5
spool,enqueue_single,enqueue_p99_ms,ms,lower,2,2,2,2
spool,backpressure,skipped,,,,,,no bounded queues
`, b.String())

	b.Reset()
	require.NoError(t, WriteText(&b, r))
	require.Contains(t, b.String(), "enqueue_single  jobs_per_s")

	_, err = ReadReport(strings.NewReader(`{"scenarios":[]}`))
	require.Error(t, err)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Options{}.withDefaults().Validate())
	require.NoError(t, QuickOptions().withDefaults().Validate())
	o := Options{Scenarios: []string{"nope"}, Runs: -1, PayloadSize: 3}.withDefaults()
	err := o.Validate()
	require.ErrorContains(t, err, `unknown scenario "nope"`)
	require.ErrorContains(t, err, "Runs must be positive")
	require.ErrorContains(t, err, "PayloadSize must be at least")
}
