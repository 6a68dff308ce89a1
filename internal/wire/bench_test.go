package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/spoolq/spool"
)

// benchJobs is a lease answer of n jobs as the server sends it.
func benchJobs(n int) *spool.JobsResponse {
	r := &spool.JobsResponse{Jobs: make([]*spool.Job, n)}
	for i := range r.Jobs {
		at := time.Date(2026, 3, 1, 12, 0, i, 123456789, time.UTC)
		exp := at.Add(30 * time.Second)
		r.Jobs[i] = &spool.Job{
			ID:             fmt.Sprintf("0190b3c4-7d2e-7a1b-9c3d-%012d", i),
			Queue:          "emails",
			Type:           "send_welcome",
			Payload:        json.RawMessage(fmt.Sprintf(`{"user_id":%d,"email":"user%d@example.com","template":"welcome","locale":"en-GB"}`, i, i)),
			State:          spool.StateActive,
			RunAt:          at,
			Attempt:        1,
			MaxAttempts:    25,
			Tags:           []string{"signup"},
			Worker:         "worker-7:31337",
			LeaseExpiresAt: &exp,
			CreatedAt:      at,
			ReadyAt:        &at,
			StartedAt:      &at,
			Lease:          &spool.Lease{Token: fmt.Sprintf("tok-%032d", i), ExpiresAt: exp},
		}
	}
	return r
}

// benchBatch is a batch enqueue request of n jobs as the SDK sends it.
func benchBatch(n int) []byte {
	req := spool.BatchEnqueueRequest{Jobs: make([]spool.EnqueueRequest, n)}
	for i := range req.Jobs {
		req.Jobs[i] = spool.EnqueueRequest{
			Type:           "send_welcome",
			Payload:        json.RawMessage(fmt.Sprintf(`{"user_id":%d,"email":"user%d@example.com","template":"welcome","locale":"en-GB"}`, i, i)),
			MaxAttempts:    10,
			IdempotencyKey: fmt.Sprintf("signup-%d", i),
			Tags:           []string{"signup"},
		}
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

func BenchmarkEncodeJobsResponse(b *testing.B) {
	r := benchJobs(100)
	b.Run("wire", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendJobsResponse(buf[:0], r)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding_json", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}

func BenchmarkDecodeJobsResponse(b *testing.B) {
	data := AppendJobsResponse(nil, benchJobs(100))
	b.SetBytes(int64(len(data)))
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r spool.JobsResponse
			if err := DecodeJobsResponse(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r spool.JobsResponse
			if err := json.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeBatchEnqueueRequest(b *testing.B) {
	data := benchBatch(100)
	b.SetBytes(int64(len(data)))
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r spool.BatchEnqueueRequest
			if !DecodeBatchEnqueueRequest(data, &r) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r spool.BatchEnqueueRequest
			if err := stdDecodeBody(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncodeBatchEnqueueRequest(b *testing.B) {
	var req spool.BatchEnqueueRequest
	if err := json.Unmarshal(benchBatch(100), &req); err != nil {
		b.Fatal(err)
	}
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var ok bool
			if buf, ok = TryAppendBatchEnqueueRequest(buf[:0], &req); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
