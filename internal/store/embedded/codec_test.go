package embedded

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// fullJob has every field of spool.Job set (see fullRecord).
func fullJob() *job {
	r := fullRecord()
	return &job{rec: newMeta(r, nil), seq: 12345678901, hasPayload: true, hasResult: true}
}

// fullRecord has every field of spool.Job set, bodies included, in a
// non-UTC zone and with a monotonic reading.
func fullRecord() *store.Record {
	loc := time.FixedZone("X", 5*3600+1800)
	now := time.Now() // monotonic reading: must not matter
	ts := func(d time.Duration) *time.Time { v := time.Date(2031, 2, 3, 4, 5, 6, 789, loc).Add(d); return &v }
	return &store.Record{
		Job: spool.Job{
			ID: "0190a1b2-c3d4-7e5f-8a9b-000000000001", Queue: "q.1", Type: "type/ü",
			Payload: json.RawMessage(`{}`), Priority: -17, State: spool.StateActive, RunAt: *ts(0),
			Attempt: 3, MaxAttempts: 1000, Timeout: spool.Duration(90 * time.Second),
			Backoff:        &spool.Backoff{Base: spool.Duration(time.Second), Max: spool.Duration(time.Hour)},
			IdempotencyKey: "key\x00with nul", OrderingKey: "ok", DependsOn: []string{"a", ""}, Tags: []string{"t1", "t2"}, CallbackURL: "https://example.com/hook",
			Result:   json.RawMessage(`{}`),
			Errors:   []spool.AttemptError{{Attempt: 1, Error: "e1", At: *ts(time.Second)}, {Attempt: 2, Error: "", At: now}},
			Progress: &spool.Progress{Percent: 33.3, Message: "m", UpdatedAt: *ts(2 * time.Second)},
			Worker:   "w", LeaseExpiresAt: ts(time.Minute), CancelRequested: true, CreatedAt: *ts(-time.Hour),
			ReadyAt: &now, StartedAt: ts(3 * time.Second), FinishedAt: &time.Time{},
			Lease: &spool.Lease{Token: "lt", ExpiresAt: *ts(time.Minute)},
		},
		Token: "tok",
		Rev:   1 << 40,
	}
}

func TestCodecKnowsEveryJobField(t *testing.T) {
	t.Parallel()
	var fields []string
	for f := range reflect.TypeFor[spool.Job]().Fields() {
		fields = append(fields, f.Name)
	}
	require.Equal(t, codecFields, fields,
		"spool.Job changed: give each new field a tag in jobcodec.go (appendJob, parseJob), then update codecFields and fullJob")

	j := reflect.ValueOf(fullRecord().Job)
	for i := range j.NumField() {
		require.False(t, j.Field(i).IsZero(), "fullJob leaves %s zero", j.Type().Field(i).Name)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	for name, j := range map[string]*job{"full": fullJob(), "empty": {rec: meta{State: spool.StateReady}}} {
		t.Run(name, func(t *testing.T) {
			b := encodeJob(j)
			require.NotContains(t, string(b), `{}`, "bodies live under their own keys")
			got, err := decodeJob(j.rec.ID, b)
			require.NoError(t, err)

			want := j.rec.Clone()
			want.Payload, want.Result = nil, nil
			// Times come back in UTC without a monotonic reading; compare
			// through JSON, which writes the instant.
			wj, _ := json.Marshal(utcJob(want.Job))
			gj, _ := json.Marshal(utcJob(got.rec.Clone().Job))
			require.JSONEq(t, string(wj), string(gj))
			require.Equal(t, want.Token, got.rec.Token)
			require.Equal(t, want.Rev, got.rec.Rev)
			require.Equal(t, j.seq, got.seq)
			require.Equal(t, j.hasPayload, got.hasPayload)
			require.Equal(t, j.hasResult, got.hasResult)
			require.Equal(t, b, encodeJob(got), "encoding is stable")
		})
	}
}

func utcJob(j spool.Job) spool.Job {
	c := store.CloneJob(&j)
	u := func(t time.Time) time.Time { return t.UTC().Round(0) }
	c.RunAt, c.CreatedAt = u(c.RunAt), u(c.CreatedAt)
	for _, p := range []*time.Time{c.LeaseExpiresAt, c.ReadyAt, c.StartedAt, c.FinishedAt} {
		if p != nil {
			*p = u(*p)
		}
	}
	for i := range c.Errors {
		c.Errors[i].At = u(c.Errors[i].At)
	}
	if c.Progress != nil {
		c.Progress.UpdatedAt = u(c.Progress.UpdatedAt)
	}
	if c.Lease != nil {
		c.Lease.ExpiresAt = u(c.Lease.ExpiresAt)
	}
	return c
}

func TestCodecRefuses(t *testing.T) {
	t.Parallel()
	_, err := parseJob("x", append(encodeJob(fullJob()), 99, 0))
	require.ErrorContains(t, err, "unknown field tag 99")
	_, err = decodeJob("x", encodeJob(&job{rec: meta{State: "bogus"}}))
	require.ErrorContains(t, err, `unknown state "bogus"`)
	_, err = parseJob("x", []byte{tagQueue, 200})
	require.ErrorIs(t, err, errTruncated)
}

// FuzzDecodeJob: no input makes the decoder panic or allocate without
// bound, and whatever it accepts encodes back to a record that decodes the
// same.
func FuzzDecodeJob(f *testing.F) {
	f.Add(encodeJob(fullJob()))
	f.Add(encodeJob(&job{rec: meta{State: spool.StateReady}}))
	f.Add([]byte{tagErrors, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := parseJob("id", b)
		if err != nil {
			return
		}
		again, err := parseJob("id", encodeJob(j))
		require.NoError(t, err)
		require.Equal(t, encodeJob(j), encodeJob(again))
	})
}

// encodeJob is a job record as the store writes it (txn.setJob).
func encodeJob(j *job) []byte { return appendJob(nil, j) }
