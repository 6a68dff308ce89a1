package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/jobtest"
)

func TestAppendJob(t *testing.T) {
	t.Parallel()
	for name, j := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := stdEncode(j)
			require.NoError(t, err)
			got, ok := TryAppendJob([]byte("prefix"), j)
			require.True(t, ok, "the fast path refused the job")
			require.Equal(t, string(want), string(got[len("prefix"):])+"\n")
			require.Equal(t, string(want), string(AppendJob(nil, j))+"\n")
		})
	}
}

func TestAppendJobFallback(t *testing.T) {
	t.Parallel()
	for name, j := range fallbackJobs() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, ok := TryAppendJob(nil, j)
			require.False(t, ok, "the fast path took a job encoding/json must write")
			want, err := stdEncode(j)
			got := AppendJob([]byte("x"), j)
			if err != nil {
				require.Equal(t, "x", string(got), "b must come back unchanged")
				return
			}
			require.Equal(t, "x"+string(want), string(got)+"\n")
		})
	}
}

func TestAppendJobsResponse(t *testing.T) {
	t.Parallel()
	var all []*spool.Job
	for _, j := range encodeCases() {
		all = append(all, j)
	}
	cases := map[string]*spool.JobsResponse{
		"nil jobs":       {},
		"empty jobs":     {Jobs: []*spool.Job{}},
		"nil job":        {Jobs: []*spool.Job{nil, fullJob()}},
		"all":            {Jobs: all},
		"existing":       {Jobs: all[:2], Existing: []int{0, 1, -5, 1 << 40}},
		"empty existing": {Jobs: all[:1], Existing: []int{}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := stdEncode(r)
			require.NoError(t, err)
			got, ok := TryAppendJobsResponse(nil, r)
			require.True(t, ok)
			require.Equal(t, string(want), string(got)+"\n")
			require.Equal(t, string(want), string(AppendJobsResponse(nil, r))+"\n")
		})
	}
	t.Run("nil", func(t *testing.T) {
		t.Parallel()
		got, ok := TryAppendJobsResponse(nil, nil)
		require.True(t, ok)
		require.Equal(t, "null", string(got))
	})
	t.Run("fallback", func(t *testing.T) {
		t.Parallel()
		r := &spool.JobsResponse{Jobs: []*spool.Job{fullJob(), fallbackJobs()["too deep"]}}
		_, ok := TryAppendJobsResponse(nil, r)
		require.False(t, ok)
		want, err := stdEncode(r)
		require.NoError(t, err)
		require.Equal(t, string(want), string(AppendJobsResponse(nil, r))+"\n")

		r.Jobs[1] = fallbackJobs()["bad payload"]
		_, err = stdEncode(r)
		require.Error(t, err)
		require.Empty(t, AppendJobsResponse(nil, r))
	})
}

func TestAppendJobIDsResponse(t *testing.T) {
	t.Parallel()
	cases := map[string]*spool.JobIDsResponse{
		"nil":            nil,
		"nil ids":        {},
		"empty ids":      {IDs: []string{}},
		"ids":            {IDs: []string{"0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9d", "0190b3c4-7d2e-7a1b-9c3d-4e5f6a7b8c9e"}},
		"existing":       {IDs: []string{"a", "b"}, Existing: []int{1, 0, -3}},
		"empty existing": {IDs: []string{"a"}, Existing: []int{}},
		"escapes":        {IDs: []string{"quote\"back\\slash<&>\u2028\x01\xff"}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, err := stdEncode(r)
			require.NoError(t, err)
			require.Equal(t, string(want), string(AppendJobIDsResponse(nil, r))+"\n")
			require.Equal(t, "prefix"+string(want), string(AppendJobIDsResponse([]byte("prefix"), r))+"\n")
		})
	}
}

// TestAppendRoundTrip checks that what the encoder writes decodes, by both
// decoders, to the same jobs.
func TestAppendRoundTrip(t *testing.T) {
	t.Parallel()
	var jobs []*spool.Job
	for name, j := range encodeCases() {
		switch name {
		case "odd durations": // a negative duration does not decode
		case "payload scalars": // null is left to encoding/json
		default:
			jobs = append(jobs, j)
		}
	}
	data := AppendJobsResponse(nil, &spool.JobsResponse{Jobs: jobs, Existing: []int{3}})
	var want, got spool.JobsResponse
	require.NoError(t, json.Unmarshal(data, &want))
	require.True(t, TryDecodeJobsResponse(data, &got), "the fast path refused the encoder's output")
	require.Equal(t, want, got)
}

// The fixture of the "full" cases has every field of spool.Job set: a new
// field the fast encoder or decoder does not know then fails their
// comparison with encoding/json.
func TestFullJobSetsEveryField(t *testing.T) {
	t.Parallel()
	jobtest.RequireEveryField(t, fullJob())
}
