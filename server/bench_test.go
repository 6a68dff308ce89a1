package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// benchServer serves a real server on b.TempDir() over loopback HTTP.
func benchServer(b *testing.B) (string, *http.Client) {
	b.Helper()
	s, err := server.New(context.Background(), server.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(func() {
		s.Drain()
		hs.Close()
		_ = s.Close()
	})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	return hs.URL, hc
}

// cpuTime is the CPU time (user and system) the process has used: server
// and client both run in it, so its growth per job is what a job costs,
// a figure less noisy than wall time on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRate reports jobs/s and the CPU time per job since cpu0.
func reportRate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/job")
}

func post(b *testing.B, hc *http.Client, url string, body []byte, want int, out any) {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		b.Errorf("POST %s: %d %s", url, resp.StatusCode, data)
		return
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			b.Error(err)
		}
	}
}

var benchPayload = []byte(`{"type":"email.send","payload":{"to":"user@example.com","subject":"Welcome","body":"0123456789012345678901234567890123456789"}}`)

// BenchmarkEnqueueHTTP: one job per request from 8 concurrent producers,
// each acknowledged only after fsync. ns/op is per job.
func BenchmarkEnqueueHTTP(b *testing.B) {
	url, hc := benchServer(b)
	b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 producers
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, hc, url+"/v1/queues/bench/jobs", benchPayload, http.StatusAccepted, nil)
		}
	})
	reportRate(b, cpu0)
}

// BenchmarkEnqueueBatchHTTP: batches of 100 from 2 producers; ns/op is per job.
func BenchmarkEnqueueBatchHTTP(b *testing.B) { benchEnqueueBatch(b, 100) }

// BenchmarkEnqueueBatch1000HTTP: batches of 1,000 (the default limit) from
// 2 producers; ns/op is per job.
func BenchmarkEnqueueBatch1000HTTP(b *testing.B) { benchEnqueueBatch(b, 1000) }

func benchEnqueueBatch(b *testing.B, size int) {
	url, hc := benchServer(b)
	var buf bytes.Buffer
	buf.WriteString(`{"jobs":[`)
	for i := 0; i < size; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(benchPayload)
	}
	buf.WriteString(`]}`)
	body := buf.Bytes()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, hc, url+"/v1/queues/bench/jobs:batch", body, http.StatusAccepted, nil)
			for i := 1; i < size && pb.Next(); i++ {
			}
		}
	})
	reportRate(b, cpu0)
}

// BenchmarkLeaseCompleteHTTP: b.N jobs preloaded, then leased 100 at a time
// and acknowledged with one batch ack each by 4 workers; ns/op is per job.
func BenchmarkLeaseCompleteHTTP(b *testing.B) {
	url, hc := benchServer(b)
	var buf bytes.Buffer
	for left := b.N; left > 0; left -= 1000 {
		n := min(left, 1000)
		buf.Reset()
		buf.WriteString(`{"jobs":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.Write(benchPayload)
		}
		buf.WriteString(`]}`)
		post(b, hc, url+"/v1/queues/bench/jobs:batch", buf.Bytes(), http.StatusAccepted, nil)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	done := make(chan int, 4)
	for w := 0; w < 4; w++ {
		go func() {
			total := 0
			for {
				var leased spool.JobsResponse
				post(b, hc, url+"/v1/leases", []byte(`{"queues":["bench"],"max":100,"lease":"60s"}`), http.StatusOK, &leased)
				if len(leased.Jobs) == 0 {
					done <- total
					return
				}
				acks := spool.AcksRequest{}
				for _, j := range leased.Jobs {
					acks.Acks = append(acks.Acks, spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete})
				}
				body, _ := json.Marshal(acks)
				post(b, hc, url+"/v1/acks", body, http.StatusOK, nil)
				total += len(leased.Jobs)
			}
		}()
	}
	total := 0
	for w := 0; w < 4; w++ {
		total += <-done
	}
	if total != b.N {
		b.Fatalf("completed %d of %d", total, b.N)
	}
	reportRate(b, cpu0)
}

// BenchmarkEnqueueFullQueueHTTP measures the answer to an enqueue into a
// full queue, from 8 concurrent producers: the 503 with Retry-After that
// back pressure is made of. Nothing is written, so nothing waits for an
// fsync: ns/op is the cost of refusing one job.
func BenchmarkEnqueueFullQueueHTTP(b *testing.B) {
	url, hc := benchServer(b)
	post(b, hc, url+"/v1/queues/full/jobs", benchPayload, http.StatusAccepted, nil)
	req, err := http.NewRequest(http.MethodPatch, url+"/v1/queues/full", bytes.NewReader([]byte(`{"max_depth":1}`)))
	if err != nil {
		b.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("PATCH: %v %v", err, resp)
	}
	resp.Body.Close()
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			post(b, hc, url+"/v1/queues/full/jobs", benchPayload, http.StatusServiceUnavailable, nil)
		}
	})
	reportRate(b, cpu0)
}
