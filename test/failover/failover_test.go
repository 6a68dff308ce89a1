// Package failover runs Spool nodes (the real binary) on a PostgreSQL
// primary with a synchronous streaming standby, kills the primary with
// SIGKILL under load and promotes the standby: every job answered 202 must
// be there and finish, clients see 503 (never 500) during the switch, and
// the nodes recover by themselves. It needs the PostgreSQL server binaries
// (testproc.StartPostgresPair); it skips without them, except under
// CI=true, where it fails.
package failover

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/testproc"
)

var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "failover", &spoolBin) }

// history records what the clients saw.
type history struct {
	mu         sync.Mutex
	accepted   map[string]bool // 202
	completed  map[string]bool // complete answered 200
	statuses   map[int]int
	bodies500  []string
	firstAfter time.Time // first 202 to a request sent after the kill
	killedAt   time.Time
}

func (h *history) status(code int, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.statuses[code]++
	if code >= 500 && code != http.StatusServiceUnavailable {
		h.bodies500 = append(h.bodies500, string(body))
	}
}

func post(hc *http.Client, url string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	res, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

func TestFailoverLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the failover test starts two PostgreSQL servers")
	}
	began := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	pair := testproc.StartPostgresPair(t)
	url := pair.URL
	phase("primary and synchronous standby up")
	nodes := []*testproc.Server{
		testproc.Start(t, spoolBin, "node a", 60*time.Second, "--store", url),
		testproc.Start(t, spoolBin, "node b", 60*time.Second, "--store", url),
	}
	phase("two nodes up")
	h := &history{accepted: map[string]bool{}, completed: map[string]bool{}, statuses: map[int]int{}}
	hc := &http.Client{Timeout: 10 * time.Second}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := range 4 { // producers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				node := nodes[(i+n)%len(nodes)]
				sent := time.Now()
				code, body, err := post(hc, node.URL()+"/v1/queues/q/jobs", spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(`{"n":1}`)})
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				h.status(code, body)
				if code == http.StatusAccepted {
					var j spool.Job
					if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
						t.Errorf("a 202 without a job: %v: %s", err, body)
						continue
					}
					h.mu.Lock()
					if h.accepted[j.ID] {
						t.Errorf("job %s accepted twice", j.ID)
					}
					h.accepted[j.ID] = true
					if !h.killedAt.IsZero() && sent.After(h.killedAt) && h.firstAfter.IsZero() {
						h.firstAfter = time.Now()
					}
					h.mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	var working atomic.Bool
	working.Store(true)
	for i := range 2 { // workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for working.Load() {
				node := nodes[i%len(nodes)]
				code, body, err := post(hc, node.URL()+"/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Max: 20, Wait: ptr(spool.Duration(time.Second)), Lease: ptr(spool.Duration(5 * time.Second))})
				if err != nil || code != http.StatusOK {
					if err == nil {
						h.status(code, body)
					}
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var got spool.JobsResponse
				if json.Unmarshal(body, &got) != nil {
					continue
				}
				for _, j := range got.Jobs {
					code, body, err := post(hc, node.URL()+"/v1/jobs/"+j.ID+"/complete", map[string]any{"token": j.Lease.Token})
					if err != nil {
						continue
					}
					h.status(code, body)
					if code == http.StatusOK {
						h.mu.Lock()
						h.completed[j.ID] = true
						h.mu.Unlock()
					}
				}
			}
		}()
	}
	defer func() {
		stop.Store(true)
		working.Store(false)
		wg.Wait()
	}()

	waitFor(t, 30*time.Second, "jobs accepted before the kill", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.accepted) >= 200
	})
	phase("load running")
	h.mu.Lock()
	h.killedAt = time.Now()
	h.mu.Unlock()
	require.NoError(t, pair.KillPrimary())
	require.NoError(t, pair.Promote())
	phase("primary killed, standby promoted")
	waitFor(t, 60*time.Second, "an enqueue accepted after the failover", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return !h.firstAfter.IsZero()
	})
	h.mu.Lock()
	recovery := h.firstAfter.Sub(h.killedAt)
	h.mu.Unlock()
	phase("first enqueue accepted after the kill")
	time.Sleep(2 * time.Second) // load after the switch as well
	stop.Store(true)

	// Every accepted job finishes.
	h.mu.Lock()
	accepted := make([]string, 0, len(h.accepted))
	for id := range h.accepted {
		accepted = append(accepted, id)
	}
	h.mu.Unlock()
	waitFor(t, 120*time.Second, "every accepted job succeeded", func() bool {
		for len(accepted) > 0 {
			id := accepted[0]
			res, err := hc.Get(nodes[0].URL() + "/v1/jobs/" + id)
			if err != nil {
				return false
			}
			var j spool.Job
			err = json.NewDecoder(res.Body).Decode(&j)
			res.Body.Close()
			if res.StatusCode == http.StatusNotFound {
				t.Fatalf("job %s was answered 202 and is lost after the failover", id)
			}
			if err != nil || j.State != spool.StateSucceeded {
				return false
			}
			accepted = accepted[1:]
		}
		return true
	})
	phase("every accepted job succeeded")
	working.Store(false)
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Empty(t, h.bodies500, "answers other than 503 among the 5xx during the failover")
	t.Logf("failover: %d jobs accepted, all succeeded; statuses %v; from kill -9 of the primary to the first accepted enqueue: %s",
		len(h.accepted), h.statuses, recovery.Round(time.Millisecond))
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
