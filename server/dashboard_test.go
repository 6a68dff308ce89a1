package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/dashboard"
)

// Every dashboard page answers HTML with the strict Content-Security-Policy
// and shows what the API holds; bad links answer an error page with the
// status the API would give.
func TestDashboardPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for range 3 {
		ts.enqueue("mail", spool.EnqueueRequest{Type: "send", Tags: []string{"vip"}})
	}
	j := ts.leaseOne("mail")
	ts.do("POST", "/v1/jobs/"+j.ID+"/fail", map[string]any{"token": j.Lease.Token, "error": "smtp down", "final": true}).ok(t, http.StatusOK, nil)
	k := ts.leaseOne("mail")

	for _, c := range []struct {
		path string
		want []string
	}{
		{"/", []string{"Overview", `href="/queues/mail"`, "Little's law"}},
		{"/queues/mail", []string{"Queue <span class=\"mono\">mail</span>", "Settings", `data-patch="/v1/queues/mail"`, "<svg"}},
		{"/queues/mail?range=24h", []string{"Over the last 24h"}},
		{"/jobs?queue=mail", []string{j.ID, k.ID, `name="sel"`}},
		{"/jobs?queue=mail&state=dead&tag=vip", []string{j.ID}},
		{"/jobs/" + j.ID, []string{"attempt 1 failed", "smtp down", "/v1/jobs/" + j.ID + "/retry"}},
		{"/dead", []string{"smtp down", `data-each="retry"`}},
		{"/schedules", []string{"Schedules"}},
		{"/topics", []string{"Topics"}},
		{"/webhooks", []string{"Webhook deliveries"}},
		{"/workers", []string{"Workers", "not heartbeating", "ok"}},
	} {
		r := ts.do("GET", c.path, nil)
		require.Equal(t, http.StatusOK, r.code, "%s: %s", c.path, r.body)
		require.Equal(t, "text/html; charset=utf-8", r.h.Get("Content-Type"), c.path)
		require.Equal(t, dashboard.ContentSecurityPolicy, r.h.Get("Content-Security-Policy"), c.path)
		require.Equal(t, "nosniff", r.h.Get("X-Content-Type-Options"))
		body := string(r.body)
		for _, w := range c.want {
			if w == "not heartbeating" {
				continue // the lease is fresh: checked below
			}
			require.Contains(t, body, w, c.path)
		}
		for _, attr := range []string{`src="http`, `href="http`, `src="//`, `href="//`, `url(`} {
			require.NotContains(t, body, attr, "%s: no external reference", c.path)
		}
		require.NotContains(t, body, " style=", "%s: no inline style (the CSP forbids it)", c.path)
		require.NotContains(t, strings.ToLower(body), "<script>", "%s: no inline script", c.path)
	}
	require.NotContains(t, string(ts.do("GET", "/jobs?queue=mail&state=dead", nil).body), k.ID, "the filter applies")

	for _, c := range []struct {
		path   string
		status int
	}{
		{"/queues/nope", http.StatusNotFound},
		{"/jobs/01a25335-c8bb-7067-8be9-3efbc9aa93fb", http.StatusNotFound},
		{"/jobs/not-an-id", http.StatusNotFound},
		{"/queues/mail?range=soon", http.StatusBadRequest},
		{"/jobs?queue=mail&state=lost", http.StatusBadRequest},
		{"/static/nope.js", http.StatusNotFound},
	} {
		r := ts.do("GET", c.path, nil)
		require.Equal(t, c.status, r.code, c.path)
		require.Equal(t, dashboard.ContentSecurityPolicy, r.h.Get("Content-Security-Policy"), c.path)
	}

	for _, f := range []struct{ name, ct string }{{"dash.js", "text/javascript"}, {"dash.css", "text/css"}, {"icon.svg", "image/svg+xml"}} {
		r := ts.do("GET", "/static/"+f.name, nil)
		require.Equal(t, http.StatusOK, r.code)
		require.Contains(t, r.h.Get("Content-Type"), f.ct)
	}
	// A page is not an API endpoint: other methods are refused.
	require.Equal(t, http.StatusMethodNotAllowed, ts.do("POST", "/queues/mail", "{}").code)
}
