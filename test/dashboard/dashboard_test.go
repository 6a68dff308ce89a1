// Package dashboard tests the web dashboard in a real headless Chromium
// (Debian's chromium package, driven with chromedp) against the real
// server in-process on a free port: every page loads without a console
// error (a Content-Security-Policy violation is one), and the click flows
// an operator uses change what the API then reports. With SPOOL_SCREENSHOTS
// set to a directory, it saves a screenshot of each page there (the images
// of docs/dashboard.md).
package dashboard

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

// chromiumPath finds the browser; without one the test fails under CI and
// skips elsewhere (scripts/ensure-chromium installs it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium: run scripts/ensure-chromium (apt-get install chromium)")
	}
	t.Skip("no chromium (scripts/ensure-chromium installs it): skipping the dashboard's browser tests")
	return ""
}

// env is a server, an SDK client on it, and a browser tab.
type env struct {
	t       *testing.T
	url     string
	c       *client.Client
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	chrome := chromiumPath(t)
	srv, err := server.New(context.Background(), server.Config{DataDir: t.TempDir()})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	c, err := client.New(hs.URL)
	require.NoError(t, err)
	e := &env{t: t, url: hs.URL, c: c}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	e.ctx = ctx
	// The first action starts the browser; the console is read from then on.
	e.run(chromedp.Navigate("about:blank"))
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				e.mu.Lock()
				e.console = append(e.console, m.String()+" at "+m.URL)
				e.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancelCtx()
		<-consoleDone
		cancelAlloc()
		c.Close()
		srv.Drain()
		hs.Close()
		require.NoError(t, srv.Close())
	})
	return e
}

func (e *env) run(actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	require.NoError(e.t, chromedp.Do(e.ctx, actions...))
}

// open loads a page and waits for it and its script.
func (e *env) open(path string) {
	e.t.Helper()
	e.run(chromedp.Navigate(e.url+path), chromedp.WaitReady(chromedp.CSS("body")),
		chromedp.Poll[chromedp.Void](`document.readyState === "complete"`, chromedp.WithPollingTimeout(10*time.Second)))
}

// noConsoleErrors fails on any console error since the last call.
func (e *env) noConsoleErrors(where string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.Empty(e.t, e.console, "console errors on %s", where)
	e.console = nil
}

// expectConsole takes the console errors since the last check, which must
// all contain want (a refusal the test provoked on purpose).
func (e *env) expectConsole(want string) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range e.console {
		require.Contains(e.t, m, want)
	}
	e.console = nil
}

// sub runs a subtest whose helpers fail it (not its parent).
func (e *env) sub(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		parent := e.t
		e.t = t
		defer func() { e.t = parent }()
		fn(t)
	})
}

// waitFor polls the browser until expr is true.
func (e *env) waitFor(expr string) {
	e.t.Helper()
	// A navigation (a sign-in, a redirect) ends a poll: poll again on the
	// new page until the deadline.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := chromedp.Do(e.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline)),
			chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			return
		}
		msg := err.Error()
		transient := strings.Contains(msg, "navigated") || strings.Contains(msg, "context was destroyed") ||
			strings.Contains(msg, "Cannot find context")
		if time.Now().After(deadline) || !transient {
			require.NoError(e.t, err, "waiting for %s", expr)
		}
	}
}

// eventually polls a condition on the server side with a deadline.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) screenshot(name string) {
	e.t.Helper()
	dir := os.Getenv("SPOOL_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(e.ctx, chromedp.CaptureScreenshot())
	require.NoError(e.t, err)
	require.NoError(e.t, os.MkdirAll(dir, 0o755))
	require.NoError(e.t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

func (e *env) job(id string) *spool.Job {
	e.t.Helper()
	j, err := e.c.Get(context.Background(), id, 0)
	require.NoError(e.t, err)
	return j
}

// deadJob enqueues a job to queue and fails it for good.
func (e *env) deadJob(queue, typ, msg string) string {
	e.t.Helper()
	ctx := context.Background()
	j, err := e.c.Push(ctx, queue, typ, map[string]any{"n": 1})
	require.NoError(e.t, err)
	for {
		leased, err := e.c.Lease(ctx, spool.LeaseRequest{Queues: []string{queue}, Max: 1, Worker: "worker-a"})
		require.NoError(e.t, err)
		require.Len(e.t, leased, 1)
		_, err = e.c.Fail(ctx, leased[0].ID, spool.FailRequest{Token: leased[0].Lease.Token, Error: msg, Final: true})
		require.NoError(e.t, err)
		if leased[0].ID == j.ID {
			return j.ID
		}
	}
}

func TestDashboardInChromium(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// Data for every page: a queue with jobs in several states, dead jobs
	// with two errors, a worker holding a lease, a schedule and a topic.
	_, err := e.c.UpdateQueue(ctx, "mail", spool.QueueConfig{TargetWait: ptr(spool.Duration(2 * time.Second))})
	require.NoError(t, err)
	dead1 := e.deadJob("mail", "send", "smtp: connection refused")
	e.deadJob("mail", "send", "smtp: connection refused")
	e.deadJob("mail", "send", "template missing")
	for i := range 4 {
		_, err := e.c.Push(ctx, "mail", "send", map[string]any{"to": fmt.Sprintf("user%d@example.com", i)}, client.Tags("welcome"))
		require.NoError(t, err)
	}
	leased, err := e.c.Lease(ctx, spool.LeaseRequest{Queues: []string{"mail"}, Max: 1, Worker: "host-1:4242"})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	_, err = e.c.Heartbeat(ctx, leased[0].ID, spool.HeartbeatRequest{Token: leased[0].Lease.Token,
		Progress: &spool.ProgressUpdate{Percent: 40, Message: "rendering"}})
	require.NoError(t, err)
	_, err = e.c.PutSchedule(ctx, "nightly", spool.ScheduleRequest{Cron: "0 3 * * *",
		Job: spool.ScheduleJob{Queue: "reports", EnqueueRequest: spool.EnqueueRequest{Type: "report.build"}}})
	require.NoError(t, err)
	_, err = e.c.Subscribe(ctx, "signups", "mail", "welcome")
	require.NoError(t, err)

	// Every page loads with no console error.
	for _, p := range []struct{ path, shot string }{
		{"/", "overview"},
		{"/queues/mail", "queue"},
		{"/jobs?queue=mail", "jobs"},
		{"/jobs/" + dead1, "job"},
		{"/dead", "dead"},
		{"/schedules", "schedules"},
		{"/topics", "topics"},
		{"/webhooks", "webhooks"},
		{"/workers", "workers"},
	} {
		e.open(p.path)
		e.waitFor(`document.getElementById("main") !== null`)
		e.screenshot(p.shot)
		e.noConsoleErrors(p.path)
	}
	// The dark theme, chosen with the header's switch, and a phone's width.
	e.open("/")
	e.run(chromedp.Click(chromedp.CSS("#theme")))
	e.waitFor(`document.documentElement.dataset.theme !== undefined`)
	e.screenshot("overview-dark")
	e.run(chromedp.EmulateViewport(390, 844))
	e.open("/queues/mail")
	e.screenshot("queue-phone")
	e.run(chromedp.EmulateViewport(1280, 860))
	e.noConsoleErrors("theme and phone")

	e.sub(t, "PauseResume", func(t *testing.T) {
		e.open("/queues/mail")
		e.run(chromedp.Click(chromedp.CSS("#pause")))
		e.waitFor(`document.getElementById("resume") !== null`)
		e.eventually("the queue paused", func() bool {
			q, err := e.c.Queue(ctx, "mail")
			return err == nil && *q.Config.Paused
		})
		e.run(chromedp.Click(chromedp.CSS("#resume")))
		e.waitFor(`document.getElementById("pause") !== null`)
		e.eventually("the queue resumed", func() bool {
			q, err := e.c.Queue(ctx, "mail")
			return err == nil && !*q.Config.Paused
		})
		e.noConsoleErrors("pause/resume")
	})

	e.sub(t, "EditLimit", func(t *testing.T) {
		e.open("/queues/mail")
		e.run(chromedp.SetValue(chromedp.CSS(`input[name="max_depth"]`), "500"),
			chromedp.SetValue(chromedp.CSS(`input[name="rate"]`), "2.5"),
			chromedp.Click(chromedp.CSS(`#settings button[type="submit"]`)))
		e.eventually("the new limits", func() bool {
			q, err := e.c.Queue(ctx, "mail")
			return err == nil && *q.Config.MaxDepth == 500 && *q.Config.Rate == 2.5
		})
		e.waitFor(`document.getElementById("flash").textContent.includes("Saved")`)
		// The page redraws the form with the values now in force.
		e.waitFor(`document.querySelector('input[name="max_depth"]').defaultValue === "500"`)
		// A bad value is refused by the API and said on the page; nothing changes.
		e.run(chromedp.SetValue(chromedp.CSS(`input[name="max_depth"]`), "0"),
			chromedp.Click(chromedp.CSS(`#settings button[type="submit"]`)))
		e.waitFor(`document.getElementById("flash").classList.contains("error")`)
		e.expectConsole("400 (Bad Request)")
		q, err := e.c.Queue(ctx, "mail")
		require.NoError(t, err)
		require.EqualValues(t, 500, *q.Config.MaxDepth)
		e.noConsoleErrors("edit a limit")
	})

	e.sub(t, "RetryDeadJob", func(t *testing.T) {
		e.open("/jobs/" + dead1)
		e.run(chromedp.Click(chromedp.CSS("#retry")))
		e.eventually("the dead job retried", func() bool { return e.job(dead1).State == spool.StateReady })
		e.waitFor(`document.getElementById("job-state").textContent === "ready"`)
		e.noConsoleErrors("retry a dead job")
	})

	e.sub(t, "BulkRetryFiltered", func(t *testing.T) {
		var a []string
		for range 3 {
			a = append(a, e.deadJob("bulk", "a", "boom"))
		}
		b := e.deadJob("bulk", "b", "boom")
		e.open("/jobs?queue=bulk&state=dead&type=a")
		e.run(chromedp.Click(chromedp.CSS("#all-retry")))
		e.waitFor(`!document.getElementById("confirm").hidden`)
		text, err := chromedp.Run(e.ctx, chromedp.Text(chromedp.CSS("#confirm-text")))
		require.NoError(t, err)
		require.Contains(t, text, "retry 3 jobs of bulk")
		for _, id := range a {
			require.Equal(t, spool.StateDead, e.job(id).State, "nothing changes before the confirmation")
		}
		e.run(chromedp.Click(chromedp.CSS("#confirm-yes")))
		e.eventually("the filtered set retried", func() bool {
			for _, id := range a {
				if e.job(id).State != spool.StateReady {
					return false
				}
			}
			return true
		})
		require.Equal(t, spool.StateDead, e.job(b).State, "a job outside the filter stays dead")
		e.waitFor(`document.getElementById("flash").textContent.includes("3 jobs retried")`)
		e.noConsoleErrors("bulk retry")
	})

	e.sub(t, "PayloadFilterBulkCancel", func(t *testing.T) {
		var ids []string
		for _, customer := range []any{42, "acme", 42.0} {
			j, err := e.c.Push(ctx, "pf", "t", map[string]any{"customer": customer})
			require.NoError(t, err)
			ids = append(ids, j.ID)
		}
		e.open("/jobs?queue=pf")
		e.run(chromedp.SetValue(chromedp.CSS("#payload-filter"), "customer=42"),
			chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)))
		e.waitFor(`new URLSearchParams(location.search).get("payload") === "customer=42" && document.querySelectorAll("#jobs-table tbody tr").length === 2`)
		e.run(chromedp.Click(chromedp.CSS("#all-cancel")))
		e.waitFor(`!document.getElementById("confirm").hidden`)
		text, err := chromedp.Run(e.ctx, chromedp.Text(chromedp.CSS("#confirm-text")))
		require.NoError(t, err)
		require.Contains(t, text, "cancel 2 jobs of pf")
		e.run(chromedp.Click(chromedp.CSS("#confirm-yes")))
		e.eventually("the jobs matching the payload filter cancelled", func() bool {
			return e.job(ids[0]).State == spool.StateCancelled && e.job(ids[2]).State == spool.StateCancelled
		})
		require.Equal(t, spool.StateReady, e.job(ids[1]).State, "a job outside the payload filter stays ready")
		e.noConsoleErrors("payload filter")
	})

	e.sub(t, "CancelSelected", func(t *testing.T) {
		j1, err := e.c.Push(ctx, "sel", "t", nil)
		require.NoError(t, err)
		j2, err := e.c.Push(ctx, "sel", "t", nil)
		require.NoError(t, err)
		e.open("/jobs?queue=sel")
		e.run(chromedp.Click(chromedp.CSS(`input[name="sel"][value="`+j1.ID+`"]`)),
			chromedp.Click(chromedp.CSS("#sel-cancel")))
		e.eventually("the selected job cancelled", func() bool { return e.job(j1.ID).State == spool.StateCancelled })
		require.Equal(t, spool.StateReady, e.job(j2.ID).State, "an unselected job is untouched")
		// And one job from its own page.
		e.open("/jobs/" + j2.ID)
		e.run(chromedp.Click(chromedp.CSS("#cancel")))
		e.eventually("the job cancelled", func() bool { return e.job(j2.ID).State == spool.StateCancelled })
		e.noConsoleErrors("cancel")
	})

	e.sub(t, "LiveCount", func(t *testing.T) {
		_, err := e.c.Push(ctx, "live", "t", nil)
		require.NoError(t, err)
		e.open("/")
		const cell = `document.querySelector('tr[data-queue="live"] [data-count="depth"]')`
		e.waitFor(cell + `.textContent === "1"`)
		e.waitFor(`document.getElementById("live-state").textContent.includes("live")`)
		_, err = e.c.Push(ctx, "live", "t", nil)
		require.NoError(t, err)
		e.waitFor(cell + `.textContent === "2"`)
		e.noConsoleErrors("live count")
	})
}

func ptr[T any](v T) *T { return &v }

// With a key stored, the dashboard asks for one, keeps the session in its
// cookies, and its actions carry the session's CSRF token.
func TestDashboardSignInChromium(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created, err := e.c.CreateKey(ctx, spool.CreateKeyRequest{Name: "ops", Roles: []string{"admin"}})
	require.NoError(t, err)
	keyed, err := client.New(e.url, client.WithAPIKey(created.Secret))
	require.NoError(t, err)
	t.Cleanup(keyed.Close)
	e.c = keyed
	_, err = keyed.Push(ctx, "mail", "send", nil)
	require.NoError(t, err)

	e.open("/queues/mail")
	e.waitFor(`location.pathname === "/login" && document.getElementById("login") !== null`)
	e.screenshot("login")
	// A wrong secret is refused on the page.
	e.run(chromedp.SetValue(chromedp.CSS(`input[name="key"]`), "wrong"),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	e.waitFor(`document.getElementById("flash").classList.contains("error")`)
	e.expectConsole("401 (Unauthorized)")
	e.run(chromedp.SetValue(chromedp.CSS(`input[name="key"]`), created.Secret),
		chromedp.Click(chromedp.CSS(`#login button[type="submit"]`)))
	e.waitFor(`location.pathname === "/queues/mail" && document.getElementById("pause") !== null`)
	e.waitFor(`document.cookie === ""`) // the session is out of the script's reach
	e.run(chromedp.Click(chromedp.CSS("#pause")))
	e.eventually("the queue paused through the session", func() bool {
		q, err := keyed.Queue(ctx, "mail")
		return err == nil && *q.Config.Paused
	})
	e.run(chromedp.Click(chromedp.CSS("#signout")))
	e.waitFor(`location.pathname === "/login"`)
	e.open("/")
	e.waitFor(`location.pathname === "/login"`)
	e.noConsoleErrors("sign in and out")
}
