package wire

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// The fuzzers check the one promise of the package: when a fast path
// takes a value, the result is encoding/json's. The seed corpus is in
// testdata/fuzz and the f.Add calls; run one with, for instance,
// go test -fuzz FuzzDecodeJobsResponse -fuzztime 60s ./internal/wire/

func FuzzDecodeBatchEnqueueRequest(f *testing.F) {
	for _, s := range []string{
		`{"jobs":[` + fullEnqueue + `]}`,
		`{"jobs":[{"type":"a","tags":[],"payload":[1, {"a":"\u00e9"}]},{"type":"a","delay":"1h"}]}`,
		`{"jobs":[]}`, `{}`, `{"jobs":[{"Type":"x"}]}`, `{"jobs":[{"priority":-1,"max_attempts":3}]} `,
		`{"jobs":[{"run_at":"2026-03-01T12:00:00Z","backoff":{"base":"1s"},"depends_on":["a"]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got spool.BatchEnqueueRequest
		if !DecodeBatchEnqueueRequest(data, &got) {
			require.Equal(t, spool.BatchEnqueueRequest{}, got)
			return
		}
		var want spool.BatchEnqueueRequest
		require.NoError(t, stdDecodeBody(data, &want))
		require.Equal(t, want, got)
	})
}

func FuzzDecodeAcksRequest(f *testing.F) {
	for _, s := range []string{
		`{"acks":[{"id":"1","token":"t","outcome":"complete","result":{"a":[1,2]}}]}`,
		`{"acks":[{"id":"1","token":"t","outcome":"fail","error":"e","retry_in":"1s","final":true}]}`,
		`{"acks":[]}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got spool.AcksRequest
		if !DecodeAcksRequest(data, &got) {
			require.Equal(t, spool.AcksRequest{}, got)
			return
		}
		var want spool.AcksRequest
		require.NoError(t, stdDecodeBody(data, &want))
		require.Equal(t, want, got)
	})
}

func FuzzDecodeJobsResponse(f *testing.F) {
	var jobs []*spool.Job
	for _, j := range encodeCases() {
		jobs = append(jobs, j)
		f.Add(AppendJobsResponse(nil, &spool.JobsResponse{Jobs: []*spool.Job{j}}))
	}
	f.Add(AppendJobsResponse(nil, &spool.JobsResponse{Jobs: jobs, Existing: []int{1, 2}}))
	f.Add([]byte(`{"jobs":[{"id":"\u00e9\ud83c\udf89","progress":{"percent":1e-7}}],"existing":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got spool.JobsResponse
		if !TryDecodeJobsResponse(data, &got) {
			require.Equal(t, spool.JobsResponse{}, got)
			return
		}
		var want spool.JobsResponse
		require.NoError(t, json.Unmarshal(data, &want))
		require.Equal(t, want, got)
		// What decodes must encode as encoding/json encodes it.
		checkEncode(t, &got)
	})
}

func FuzzAppendJob(f *testing.F) {
	f.Add("id", "q", "t", []byte(`{"a": 1}`), 5, "ready", int64(1772366400), int64(5), int64(1e9), "tag", 12.5, 3600, "w", uint8(0xff))
	f.Add("\u2028\xff\"", "", "\x00", []byte(" [ ] "), -1, "", int64(-62135596800), int64(0), int64(-1), "", 1e-9, -3600, "", uint8(0))
	f.Add("a", "b", "c", []byte(`"x`), math.MaxInt, "dead", int64(253402300800), int64(999999999), int64(math.MaxInt64), "<>&", 1e21, 86400, "é", uint8(0x55))
	f.Fuzz(func(t *testing.T, id, queue, typ string, payload []byte, prio int, state string, sec, nsec, dur int64, tag string, percent float64, offset int, worker string, flags uint8) {
		at := time.Unix(sec, nsec).In(time.FixedZone("z", offset%(48*3600)))
		j := &spool.Job{
			ID: id, Queue: queue, Type: typ, Payload: payload, Priority: prio, State: spool.State(state),
			RunAt: at, Attempt: prio / 3, MaxAttempts: -prio, Timeout: spool.Duration(dur),
			IdempotencyKey: tag, OrderingKey: worker, CallbackURL: queue + tag, Worker: worker,
			CancelRequested: flags&1 != 0, CreatedAt: at.UTC(),
		}
		if flags&2 != 0 {
			j.Backoff = &spool.Backoff{Base: spool.Duration(dur / 7), Max: spool.Duration(nsec)}
			j.Result = json.RawMessage(tag)
		}
		if flags&4 != 0 {
			j.DependsOn, j.Tags = []string{id, tag}, []string{}
			j.Errors = []spool.AttemptError{{Attempt: prio, Error: worker + typ, At: at}}
		}
		if flags&8 != 0 {
			j.Progress = &spool.Progress{Percent: percent, Message: tag, UpdatedAt: at.Add(time.Duration(dur))}
		}
		if flags&16 != 0 {
			j.LeaseExpiresAt, j.ReadyAt, j.StartedAt = &at, &j.CreatedAt, &j.RunAt
			j.Lease = &spool.Lease{Token: typ + id, ExpiresAt: at}
		}
		if flags&32 != 0 {
			j.FinishedAt = &time.Time{}
		}
		checkEncode(t, &spool.JobsResponse{Jobs: []*spool.Job{j}})
	})
}

// checkEncode compares the fast encoder with encoding/json on r.
func checkEncode(t *testing.T, r *spool.JobsResponse) {
	t.Helper()
	want, err := stdEncode(r)
	got, ok := TryAppendJobsResponse(nil, r)
	if ok {
		require.NoError(t, err, "the fast path wrote what encoding/json refuses")
		require.Equal(t, string(want), string(got)+"\n")
	}
	if err != nil {
		require.Empty(t, AppendJobsResponse(nil, r))
		return
	}
	require.Equal(t, string(want), string(AppendJobsResponse(nil, r))+"\n")
}
