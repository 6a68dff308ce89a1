// Package diskfull runs the real spool binary on a small tmpfs and fills
// it: below the free-space mark new work is refused and the rest goes on;
// a disk that fills anyway stops the server with a non-zero exit; a start
// on a full disk fails fast; nothing acknowledged is lost. The tests mount
// tmpfs, so they need root: they skip without it, except under CI=true,
// where they fail.
package diskfull

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/testproc"
)

var spoolBin string

func TestMain(m *testing.M) { testproc.Main(m, "diskfull", &spoolBin) }

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted at
// the end of the test.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the full-disk tests run the real binary")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs for the full-disk test (it needs root, as `make test` runs in CI): %v: %s", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// free is the free space of the volume of dir.
func free(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	require.NoError(t, unix.Statfs(dir, &st))
	return int64(st.Bavail) * int64(st.Bsize)
}

// fill writes a file that leaves at most leave bytes free on dir's volume
// (0: the disk is full).
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	name := filepath.Join(dir, fmt.Sprintf("filler-%d", time.Now().UnixNano()))
	f, err := os.Create(name)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		n := free(t, dir) - leave
		if n <= 0 {
			return name
		}
		if _, err := f.Write(chunk[:min(int64(len(chunk)), n)]); err != nil {
			require.ErrorIs(t, err, syscall.ENOSPC)
			return name
		}
	}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) code() string {
	var eb spool.ErrorBody
	_ = json.Unmarshal(a.body, &eb)
	return eb.Error.Code
}

func call(srv *testproc.Server, method, path string, body any) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL()+path, rd)
	if err != nil {
		return answer{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	res, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}, err
}

func mustCall(t *testing.T, srv *testproc.Server, method, path string, body any, want int) answer {
	t.Helper()
	a, err := call(srv, method, path, body)
	require.NoError(t, err)
	require.Equal(t, want, a.status, "%s %s: %s", method, path, a.body)
	return a
}

func job(payloadBytes int) spool.EnqueueRequest {
	p, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", payloadBytes)})
	return spool.EnqueueRequest{Type: "t", Payload: p}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLowWaterMark(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, 64<<20)
	data := filepath.Join(mnt, "data")
	srv := testproc.Start(t, spoolBin, "spool serve", 20*time.Second, "--data", data, "--min-free-space", "16MiB")

	var ids []string
	for range 10 {
		var j spool.Job
		require.NoError(t, json.Unmarshal(mustCall(t, srv, "POST", "/v1/queues/q/jobs", job(100), http.StatusAccepted).body, &j))
		ids = append(ids, j.ID)
	}
	filler := fill(t, mnt, 8<<20)

	var refused answer
	eventually(t, 10*time.Second, "an enqueue refused with disk_full", func() bool {
		a, err := call(srv, "POST", "/v1/queues/q/jobs", job(100))
		require.NoError(t, err)
		if a.status == http.StatusAccepted {
			var j spool.Job
			require.NoError(t, json.Unmarshal(a.body, &j))
			ids = append(ids, j.ID)
			return false
		}
		refused = a
		return true
	})
	require.Equal(t, http.StatusServiceUnavailable, refused.status, "%s", refused.body)
	require.Equal(t, spool.CodeDiskFull, refused.code(), "%s", refused.body)
	require.Contains(t, string(refused.body), "below the mark of 16.0 MiB")
	require.NotEmpty(t, refused.header.Get("Retry-After"))

	// Reads, leases, acks and cancels go on.
	mustCall(t, srv, "GET", "/healthz", nil, http.StatusOK)
	mustCall(t, srv, "GET", "/v1/jobs/"+ids[0], nil, http.StatusOK)
	var leased spool.JobsResponse
	require.NoError(t, json.Unmarshal(mustCall(t, srv, "POST", "/v1/leases", spool.LeaseRequest{Queues: []string{"q"}, Max: 5}, http.StatusOK).body, &leased))
	require.Len(t, leased.Jobs, 5)
	for _, j := range leased.Jobs {
		mustCall(t, srv, "POST", "/v1/jobs/"+j.ID+"/complete", map[string]any{"token": j.Lease.Token, "result": map[string]int{"ok": 1}}, http.StatusOK)
	}
	mustCall(t, srv, "DELETE", "/v1/jobs/"+ids[len(ids)-1], nil, http.StatusOK)

	// Space comes back: enqueues are accepted again, no restart.
	require.NoError(t, os.Remove(filler))
	eventually(t, 10*time.Second, "an enqueue accepted once space is back", func() bool {
		a, err := call(srv, "POST", "/v1/queues/q/jobs", job(100))
		require.NoError(t, err)
		return a.status == http.StatusAccepted
	})
	for _, id := range ids {
		mustCall(t, srv, "GET", "/v1/jobs/"+id, nil, http.StatusOK)
	}
	srv.Stop(t, 20*time.Second)
}

// The disk fills anyway (no mark here, as when another process eats the
// space): the store stops, /healthz stops answering OK, the server exits
// non-zero; a start on the full disk fails fast with one clear error; once
// space is freed, a start serves every acknowledged job.
func TestDiskFillsAnyway(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, 32<<20)
	data := filepath.Join(mnt, "data")
	srv := testproc.Start(t, spoolBin, "spool serve", 20*time.Second, "--data", data, "--min-free-space", "off")

	var acked []string
	enqueue := func() answer {
		a, err := call(srv, "POST", "/v1/queues/q/jobs", job(4000))
		require.NoError(t, err)
		if a.status == http.StatusAccepted {
			var j spool.Job
			require.NoError(t, json.Unmarshal(a.body, &j))
			acked = append(acked, j.ID)
		}
		return a
	}
	for range 20 {
		require.Equal(t, http.StatusAccepted, enqueue().status)
	}
	filler := fill(t, mnt, 0)

	var failed answer
	for range 1000 {
		if a := enqueue(); a.status != http.StatusAccepted {
			failed = a
			break
		}
	}
	require.Equal(t, http.StatusServiceUnavailable, failed.status, "%s", failed.body)
	require.Equal(t, spool.CodeDiskFull, failed.code(), "%s", failed.body)
	require.NotEmpty(t, failed.header.Get("Retry-After"))
	require.NotContains(t, string(failed.body), mnt, "no internal path in the answer")

	// From now on /healthz is never OK, and the process exits non-zero.
	eventually(t, 30*time.Second, "the server exits after its store failed", func() bool {
		if a, err := call(srv, "GET", "/healthz", nil); err == nil {
			require.Equal(t, http.StatusServiceUnavailable, a.status, "/healthz of a server whose store failed: %s", a.body)
		}
		select {
		case <-srv.Done():
			return true
		default:
			return false
		}
	})
	var exit *exec.ExitError
	require.True(t, errors.As(srv.Err(), &exit) && exit.ExitCode() != 0, "exit status: %v\n%s", srv.Err(), srv.Logs())
	require.Contains(t, srv.Logs(), "stopping the server so that a restart recovers it")

	// A start on the still full disk fails fast, with one clear error.
	again := testproc.Launch(spoolBin, "spool serve (full disk)", "--data", data, "--min-free-space", "off")
	t.Cleanup(again.Kill)
	select {
	case <-again.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("a start on a full disk did not fail within 30s; log:\n%.4000s", again.Logs())
	}
	require.Error(t, again.Err())
	logs := again.Logs()
	require.Contains(t, logs, "is full")
	require.Contains(t, logs, "free some space and start again")
	require.Less(t, strings.Count(logs, "level=ERROR"), 20, "error logs are bounded:\n%.4000s", logs)

	// Space is freed: every acknowledged job is there.
	require.NoError(t, os.Remove(filler))
	srv = testproc.Start(t, spoolBin, "spool serve (space freed)", 20*time.Second, "--data", data, "--min-free-space", "off")
	for _, id := range acked {
		mustCall(t, srv, "GET", "/v1/jobs/"+id, nil, http.StatusOK)
	}
	mustCall(t, srv, "POST", "/v1/queues/q/jobs", job(10), http.StatusAccepted)
	srv.Stop(t, 20*time.Second)
}
