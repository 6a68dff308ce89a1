package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spoolq/spool/internal/auth"
)

// The cost of authentication per request. BenchmarkAuthenticate times the
// check alone (a cached key: SHA-256 of the secret and a map lookup);
// BenchmarkEnqueueAuth and BenchmarkLeaseAuth a whole request over
// loopback HTTP, open and with a key. An enqueue waits for its fsync; a
// lease of an empty queue with no wait is the lightest request there is,
// where the check weighs most.
func BenchmarkAuthenticate(b *testing.B) {
	s, secret := benchAuthServer(b, true)
	req := httptest.NewRequest("GET", "/v1/queues", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.authenticate(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnqueueAuth(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "open", true: "key"}[keyed], func(b *testing.B) {
			benchRequests(b, keyed, "/v1/queues/bench/jobs", `{"type":"t","payload":{"n":1}}`, http.StatusAccepted)
		})
	}
}

func BenchmarkLeaseAuth(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "open", true: "key"}[keyed], func(b *testing.B) {
			benchRequests(b, keyed, "/v1/leases", `{"queues":["empty"],"wait":"0s"}`, http.StatusOK)
		})
	}
}

func benchAuthServer(b *testing.B, keyed bool) (*Server, string) {
	b.Helper()
	s, err := New(context.Background(), Config{DataDir: b.TempDir(), AuthFailures: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	if !keyed {
		return s, ""
	}
	k, err := s.keys.Create(context.Background(), auth.CreateParams{Name: "bench", Roles: []string{"admin"}})
	if err != nil {
		b.Fatal(err)
	}
	return s, k.Secret
}

func benchRequests(b *testing.B, keyed bool, path, body string, want int) {
	s, secret := benchAuthServer(b, keyed)
	hs := httptest.NewServer(s.Handler())
	b.Cleanup(func() {
		s.Drain()
		hs.Close()
	})
	hc := hs.Client()
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest("POST", hs.URL+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			b.Fatalf("%s: %d", path, res.StatusCode)
		}
	}
}
