package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// checkDecode decodes data with the fast path try and with encoding/json
// (std) into zero values: fast says whether the fast path must take data;
// when it does, both must give the same value.
func checkDecode[T any](t *testing.T, data []byte, fast bool, try func([]byte, *T) bool, std func([]byte, *T) error) {
	t.Helper()
	var got, want T
	ok := try(data, &got)
	err := std(data, &want)
	require.Equal(t, fast, ok, "fast path; encoding/json says %v", err)
	if ok {
		require.NoError(t, err, "the fast path took what encoding/json refuses")
		require.Equal(t, want, got)
		return
	}
	var zero T
	require.Equal(t, zero, got, "a refusing fast path must leave out untouched")
}

func jobsResponseJSON(t *testing.T, r *spool.JobsResponse, indent bool) string {
	var (
		b   []byte
		err error
	)
	if indent {
		b, err = json.MarshalIndent(r, " ", "\t ")
	} else {
		b, err = json.Marshal(r)
	}
	require.NoError(t, err)
	return string(b)
}

func TestDecodeJobsResponse(t *testing.T) {
	t.Parallel()
	full := &spool.JobsResponse{Jobs: []*spool.Job{fullJob(), encodeCases()["escapes"], encodeCases()["unicode"]}, Existing: []int{2}}
	const job = `{"id":"1","queue":"q","type":"t","state":"ready","run_at":"2026-03-01T12:00:00Z","attempt":0,"max_attempts":3,"created_at":"2026-03-01T12:00:00Z"`
	cases := []struct {
		name string
		data string
		fast bool
	}{
		{"full", jobsResponseJSON(t, full, false), true},
		{"indented", jobsResponseJSON(t, full, true), true},
		{"server output", string(AppendJobsResponse(nil, full)) + "\n", true},
		{"empty object", `{}`, true},
		{"empty jobs", `{"jobs":[]}`, true},
		{"empty existing", `{"existing":[],"jobs":[]}`, true},
		{"minimal job", `{"jobs":[` + job + `}]}`, true},
		{"key order", `{"existing":[1,-2],"jobs":[{"type":"t","id":"x","lease":{"expires_at":"2026-03-01T12:00:00.5+01:00","token":"k"}}]}`, true},
		{"empty lists", `{"jobs":[` + job + `,"tags":[],"depends_on":[],"errors":[]}]}`, true},
		{"escapes", `{"jobs":[{"id":"\u00e9\ud83c\udf89\/\b\f\n\r\t\"\\ \u0000\u2028","tags":["a\"b","\uFFFD"]}]}`, true},
		{"raw payload", `{"jobs":[{"payload": { "a" : [ 1 , 2.5e-3 ] , "s":"\ud800 \u00"}  ,"result":"x"}]}`, false},
		{"raw payload kept", "{\"jobs\":[{\"payload\": { \"a\" : [ 1 , 2.5e-3 ] , \"s\":\"\\ud83c\\udf89 \\ufffd \u00e9\"}  ,\"result\":-0}]}", true},
		// Invalid UTF-8 and lone surrogates are left to encoding/json
		// (and refused in requests by Strict).
		{"raw payload invalid UTF-8", "{\"jobs\":[{\"payload\":\"\xff\"}]}", false},
		{"raw payload lone surrogate", `{"jobs":[{"payload":"\ud800 x"}]}`, false},
		{"raw payload reversed pair", `{"jobs":[{"payload":"\udc00\ud800"}]}`, false},
		{"big ints", `{"jobs":[{"priority":-9223372036854775808,"attempt":9223372036854775807,"max_attempts":-0}],"existing":[0]}`, true},
		{"durations", `{"jobs":[{"timeout":"1h2m3.5s","backoff":{"base":"1\u00b5s","max":"2s"}}]}`, true},
		{"zero backoff", `{"jobs":[{"backoff":{"base":"0s"}}]}`, false},
		{"empty backoff", `{"jobs":[{"backoff":{}}]}`, true},
		{"progress", `{"jobs":[{"progress":{"percent":1e2,"message":"m","updated_at":"2026-03-01T12:00:00Z"}}]}`, true},
		{"progress neg", `{"jobs":[{"progress":{"percent":-0.000001E-5}}]}`, true},
		{"bools", `{"jobs":[{"cancel_requested":false},{"cancel_requested":true}]}`, true},
		{"white space", " \t\r\n{ \"jobs\" : [ { \"id\" : \"a\" } , { } ] } \n", true},

		{"unknown key", `{"jobs":[{"id":"1","color":"red"}]}`, false},
		{"unknown top key", `{"jobs":[],"next_cursor":"x"}`, false},
		{"key case", `{"jobs":[{"ID":"1"}]}`, false},
		{"escaped key", `{"jobs":[{"\u0069d":"1"}]}`, false},
		{"null job", `{"jobs":[null]}`, false},
		{"null jobs", `{"jobs":null}`, false},
		{"null tags", `{"jobs":[{"tags":null}]}`, false},
		{"null payload", `{"jobs":[{"payload":null}]}`, false},
		{"float int", `{"jobs":[{"priority":1.0}]}`, false},
		{"exp int", `{"jobs":[{"priority":1e2}]}`, false},
		{"overflow", `{"jobs":[{"priority":9223372036854775808}]}`, false},
		{"underflow", `{"existing":[-9223372036854775809]}`, false},
		{"leading zero", `{"existing":[01]}`, false},
		{"trailing data", `{"jobs":[]} x`, false},
		{"two values", `{"jobs":[]}{}`, false},
		{"duplicate key", `{"jobs":[{"id":"1","id":"2"}]}`, false},
		{"duplicate jobs", `{"jobs":[{"id":"1"}],"jobs":[{"tags":["a"]}]}`, false},
		{"invalid utf8", "{\"jobs\":[{\"id\":\"a\xffb\"}]}", false},
		{"lone surrogate", `{"jobs":[{"id":"\ud800x"}]}`, false},
		{"reversed surrogates", `{"jobs":[{"id":"\udc00\ud800"}]}`, false},
		{"bad escape", `{"jobs":[{"id":"\x"}]}`, false},
		{"control char", "{\"jobs\":[{\"id\":\"a\tb\"}]}", false},
		{"truncated", `{"jobs":[{"id":"1"}`, false},
		{"number duration", `{"jobs":[{"timeout":5}]}`, false},
		{"negative duration", `{"jobs":[{"timeout":"-1s"}]}`, false},
		{"bad time", `{"jobs":[{"run_at":"yesterday"}]}`, false},
		{"escaped time", `{"jobs":[{"run_at":"2026-03-01T12:00:00\u005a"}]}`, false},
		{"string int", `{"jobs":[{"priority":"1"}]}`, false},
		{"array", `[]`, false},
		{"bom", "\ufeff{}", false},
		{"trailing comma", `{"jobs":[{"id":"1",}]}`, false},
		{"nan percent", `{"jobs":[{"progress":{"percent":NaN}}]}`, false},
		{"huge percent", `{"jobs":[{"progress":{"percent":1e400}}]}`, false},
		{"deep payload", `{"jobs":[{"payload":` + strings.Repeat("[", 1200) + strings.Repeat("]", 1200) + `}]}`, false},
		{"empty", ``, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checkDecode(t, []byte(c.data), c.fast, TryDecodeJobsResponse, func(b []byte, r *spool.JobsResponse) error { return json.Unmarshal(b, r) })
			var got, want spool.JobsResponse
			err := DecodeJobsResponse([]byte(c.data), &got)
			wantErr := json.Unmarshal([]byte(c.data), &want)
			require.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(err))
			require.Equal(t, want, got)
		})
	}
}

// TestDecodeJobsResponseInto decodes into values that already hold
// something, as the SDK does with a slice sized for the answer:
// json.Unmarshal keeps what the data does not set, and decodes into the
// jobs it finds.
func TestDecodeJobsResponseInto(t *testing.T) {
	t.Parallel()
	data := []byte(`{"jobs":[{"id":"a"},{"id":"b","tags":["x"]}]}`)
	cases := []struct {
		name string
		out  func() spool.JobsResponse
		fast bool
	}{
		{"capacity", func() spool.JobsResponse { return spool.JobsResponse{Jobs: make([]*spool.Job, 0, 8)} }, true},
		{"small capacity", func() spool.JobsResponse { return spool.JobsResponse{Jobs: make([]*spool.Job, 0, 1)} }, true},
		{"existing kept", func() spool.JobsResponse { return spool.JobsResponse{Existing: []int{4}} }, true},
		{"jobs to decode into", func() spool.JobsResponse {
			return spool.JobsResponse{Jobs: []*spool.Job{{ID: "old", Queue: "q", Tags: []string{"t"}}}}
		}, false},
		{"stale jobs beyond len", func() spool.JobsResponse {
			jobs := []*spool.Job{nil, {Queue: "stale"}}
			return spool.JobsResponse{Jobs: jobs[:0]}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, want := c.out(), c.out()
			require.Equal(t, c.fast, TryDecodeJobsResponse(data, &got))
			if !c.fast {
				require.Equal(t, c.out(), got)
				require.NoError(t, DecodeJobsResponse(data, &got))
			}
			require.NoError(t, json.Unmarshal(data, &want))
			require.Equal(t, want, got)
		})
	}
	t.Run("nil", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, fmt.Sprint(json.Unmarshal(data, (*spool.JobsResponse)(nil))), fmt.Sprint(DecodeJobsResponse(data, nil)))
		require.False(t, DecodeBatchEnqueueRequest([]byte(`{}`), nil))
		require.False(t, DecodeAcksRequest([]byte(`{}`), nil))
	})
	t.Run("refused after some jobs", func(t *testing.T) {
		t.Parallel()
		out := spool.JobsResponse{Jobs: make([]*spool.Job, 0, 4)}
		require.False(t, TryDecodeJobsResponse([]byte(`{"jobs":[{"id":"a"},{"id":"b"},{"id":null}]}`), &out))
		require.Empty(t, out.Jobs)
		require.Equal(t, make([]*spool.Job, 4), out.Jobs[:4], "the slice's spare room must be left clear")
	})
}
