package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/bench"
	"github.com/spoolq/spool/internal/testproc"
)

// TestBenchQuickBinary runs `spool bench --quick --json` as a real process:
// it starts its own server (the same binary's serve) and every scenario
// must produce figures. It checks that the harness works, never how fast
// anything is.
func TestBenchQuickBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the spool binary")
	}
	t.Parallel()
	bin, cleanup, err := testproc.BuildSpool("spool-bench-bin-")
	require.NoError(t, err)
	t.Cleanup(cleanup)

	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "--quick", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The bench's temporary data directory goes here, to check it is removed.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	require.NoError(t, cmd.Run(), "stderr:\n%s", stderr.String())

	r, err := bench.ReadReport(&stdout)
	require.NoError(t, err, "stdout:\n%s", stdout.String())
	require.Equal(t, "spool-embedded", r.System)
	require.Equal(t, "1", r.Params["runs"])
	require.Contains(t, stderr.String(), "spool bench: started spool-embedded server")
	require.Contains(t, stderr.String(), "spool bench: backpressure run 1/1", "plain progress lines when stderr is no terminal")

	got := map[string]map[string]bench.Metric{}
	for _, s := range r.Scenarios {
		require.Empty(t, s.Skipped, s.Name)
		got[s.Name] = s.Metrics
	}
	require.Len(t, got, len(bench.Scenarios))
	positive := func(scenario string, metrics ...string) {
		t.Helper()
		for _, m := range metrics {
			require.Contains(t, got[scenario], m, scenario)
			require.Positive(t, got[scenario][m].Median, "%s %s", scenario, m)
		}
	}
	present := func(scenario string, metrics ...string) {
		t.Helper()
		for _, m := range metrics {
			require.Contains(t, got[scenario], m, scenario)
		}
	}
	positive(bench.ScenarioEnqueueSingle, bench.MetricJobsPerSec, bench.MetricEnqueueP50, bench.MetricEnqueueP99)
	positive(bench.ScenarioEnqueueBatch, bench.MetricJobsPerSec, bench.MetricBatchP50)
	positive(bench.ScenarioProcess, bench.MetricJobsPerSec)
	present(bench.ScenarioLatency, bench.MetricE2EP50, bench.MetricE2EP99, bench.MetricE2EP999, bench.MetricE2EMax)
	positive(bench.ScenarioLatency, bench.MetricEnqueueP50, bench.MetricAcceptedPerSec)
	positive(bench.ScenarioBackpressure, bench.MetricAcceptedPerSec, bench.MetricRejectedPerSec,
		bench.MetricRejectP50, bench.MetricPeakPending, bench.MetricRSSStart, bench.MetricRSSPeak, bench.MetricRSSEnd)
	present(bench.ScenarioDelayed, bench.MetricLateP50, bench.MetricLateP99, bench.MetricLateMax)

	left, err := filepath.Glob(filepath.Join(tmp, "spool-bench-*"))
	require.NoError(t, err)
	require.Empty(t, left, "the bench removes its server's data directory")
}

// TestBenchCompare runs the bench in-process against a server (--server)
// and compares it with a saved report.
func TestBenchCompare(t *testing.T) {
	t.Parallel()
	url, _ := newServer(t)
	peer := filepath.Join(t.TempDir(), "peer.json")
	var b bytes.Buffer
	require.NoError(t, bench.WriteJSON(&b, &bench.Report{
		System: "peer-x", Durability: "none",
		Scenarios: []bench.ScenarioResult{{Name: bench.ScenarioEnqueueBatch, Metrics: map[string]bench.Metric{
			bench.MetricJobsPerSec: bench.NewMetric(bench.UnitJobsPerSec, bench.Higher, []float64{1}),
		}}},
	}))
	require.NoError(t, os.WriteFile(peer, b.Bytes(), 0o600))

	r := runEnv(t, nil, "", "bench", "--server", url, "--quick", "--scenarios", "enqueue_batch", "--count", "100", "--compare", peer)
	require.NoError(t, r.err, r.stderr)
	require.Contains(t, r.stdout, "system:     spool\n")
	require.Contains(t, r.stdout, "ratio > 1 means Spool did better")
	var row string
	for _, l := range strings.Split(r.stdout, "\n") {
		// The comparison's row ends with the ratio (the report's own
		// table ends with "higher").
		if strings.HasPrefix(l, "enqueue_batch  jobs_per_s") && strings.HasSuffix(l, "x") {
			row = l
		}
	}
	require.NotEmpty(t, row, "a ratio row for enqueue_batch jobs_per_s:\n%s", r.stdout)
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.json")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"json and csv", []string{"--json", "--csv"}, "exclude each other"},
		{"unknown scenario", []string{"--scenarios", "enqueue_single,warp"}, `unknown scenario "warp"`},
		{"zero runs", []string{"--runs", "0"}, "--runs must be positive"},
		{"tiny payload", []string{"--payload", "5"}, "PayloadSize must be at least"},
		{"bad duration", []string{"--duration", "-1s"}, "Duration must be positive"},
		{"missing compare file", []string{"--compare", missing}, "--compare"},
		{"store with server", []string{"--server", "http://127.0.0.1:1", "--store", "postgres://x/y"}, "--store is for the server"},
		{"arguments", []string{"now"}, "no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runEnv(t, nil, "", append([]string{"bench"}, tt.args...)...)
			require.ErrorContains(t, r.err, tt.want)
			require.Equal(t, 2, exitCode(r.err))
		})
	}
}
