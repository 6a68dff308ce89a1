package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/store"
	"github.com/spoolq/spool/internal/testproc"
)

// authServer is a server with keys, served over HTTP on loopback.
type authServer struct {
	t   *testing.T
	s   *Server
	url string
}

func newAuthServer(t *testing.T, cfg Config) *authServer {
	t.Helper()
	s := newInternalServer(t, cfg)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.engine.Stop()
		hs.Close()
	})
	return &authServer{t: t, s: s, url: hs.URL}
}

// key creates a key and returns its secret.
func (a *authServer) key(p auth.CreateParams) string {
	a.t.Helper()
	if p.Name == "" {
		p.Name = "test"
	}
	k, err := a.s.keys.Create(context.Background(), p)
	require.NoError(a.t, err)
	return k.Secret
}

type answer struct {
	code int
	h    http.Header
	body []byte
}

// send makes a request with secret (none if empty); body is sent as JSON.
func (a *authServer) send(method, path, secret string, body any, hdr ...string) answer {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(a.t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	var b []byte
	if res.Header.Get("Content-Type") != "text/event-stream" {
		b, err = io.ReadAll(res.Body)
		require.NoError(a.t, err)
	}
	return answer{code: res.StatusCode, h: res.Header, body: b}
}

func (r answer) errCode(t *testing.T) string {
	t.Helper()
	var eb spool.ErrorBody
	require.NoError(t, json.Unmarshal(r.body, &eb), "body: %s", r.body)
	return eb.Error.Code
}

// samplePath fills a route's path parameters.
func samplePath(pattern string) string {
	r := strings.NewReplacer("{$}", "", "{queue}", "q", "{topic}", "t", "{id}", "0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f",
		"{name}", "sched", "{key}", "00000000000000ff")
	return r.Replace(pattern)
}

// Every route × every role (and no key, and a wrong key): a role that
// grants the route's permission is let through (the answer is not 401 or
// 403), any other is refused with 403; no key and a wrong key get 401,
// except on public routes. The cases come from the route table, so a new
// route is checked as soon as it exists.
func TestRoutesTimesRoles(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{AuthFailures: 10000}) // many wrong keys on purpose
	secrets := map[auth.Role]string{}
	for _, r := range auth.Roles {
		secrets[r] = a.key(auth.CreateParams{Roles: []string{string(r)}})
	}
	_, wrong, err := auth.NewKey()
	require.NoError(t, err)
	for _, rt := range a.s.routes {
		path := samplePath(rt.pattern)
		var body any
		if rt.method != http.MethodGet && rt.method != http.MethodDelete {
			body = map[string]any{}
		}
		for _, r := range auth.Roles {
			res := a.send(rt.method, path, secrets[r], body)
			if auth.Grants(r, rt.perm) {
				require.NotContains(t, []int{401, 403}, res.code, "%s %s as %s: %s", rt.method, rt.pattern, r, res.body)
			} else {
				require.Equal(t, http.StatusForbidden, res.code, "%s %s as %s: %s", rt.method, rt.pattern, r, res.body)
				require.Equal(t, spool.CodeForbidden, res.errCode(t))
			}
		}
		for name, secret := range map[string]string{"no key": "", "a wrong key": wrong} {
			res := a.send(rt.method, path, secret, body)
			if rt.perm == auth.Public {
				require.NotContains(t, []int{401, 403}, res.code, "%s %s with %s", rt.method, rt.pattern, name)
			} else {
				require.Equal(t, http.StatusUnauthorized, res.code, "%s %s with %s: %s", rt.method, rt.pattern, name, res.body)
				require.Equal(t, spool.CodeUnauthorized, res.errCode(t))
			}
		}
	}
}

// While no key exists the server is open, but a web page still cannot
// drive it: bodies must be JSON, cross-site requests and foreign Host
// names are refused, and nothing is stored.
func TestOpenModeRefusesWebPages(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{AllowedHosts: []string{"spool.internal"}})
	ok := a.send("POST", "/v1/queues/q/jobs", "", spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusAccepted, ok.code, "open: no key needed: %s", ok.body)

	// A text/plain body (a form post needs no preflight).
	req, err := http.NewRequest("POST", a.url+"/v1/queues/q/jobs", strings.NewReader(`{"type":"t"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode)
	require.Contains(t, string(b), spool.CodeUnsupportedMediaType)

	cases := []struct {
		name string
		hdr  []string
	}{
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}},
		{"foreign origin", []string{"Origin", "http://evil.example"}},
		{"rebound host name", []string{"Host", "evil.example"}},
	}
	for _, c := range cases {
		r := a.send("POST", "/v1/queues/q/jobs", "", spool.EnqueueRequest{Type: "t"}, c.hdr...)
		require.Equal(t, http.StatusForbidden, r.code, "%s: %s", c.name, r.body)
		require.Equal(t, spool.CodeForbidden, r.errCode(t))
	}
	for _, host := range []string{"localhost:7077", "127.0.0.1", "[::1]:80", "spool.internal:7077", "SPOOL.internal"} {
		r := a.send("GET", "/v1/queues", "", nil, "Host", host)
		require.Equal(t, http.StatusOK, r.code, "host %s: %s", host, r.body)
	}
	q := a.send("GET", "/v1/queues/q", "", nil)
	var qi spool.QueueInfo
	require.NoError(t, json.Unmarshal(q.body, &qi))
	require.EqualValues(t, 1, qi.Counts[spool.StateReady], "only the first job was stored")
}

// Once a key exists every request needs one; wrong keys change nothing,
// are counted per address, and an address that failed too often is told
// to wait (429 + Retry-After).
func TestKeysRequiredAndFailuresLimited(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{AuthFailures: 3})
	secret := a.key(auth.CreateParams{Roles: []string{"producer", "viewer"}})

	r := a.send("POST", "/v1/queues/q/jobs", "", spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusUnauthorized, r.code)
	bad := secret[:len(secret)-2] + "xx"
	for range 3 {
		r = a.send("POST", "/v1/queues/q/jobs", bad, spool.EnqueueRequest{Type: "t"})
		require.Equal(t, http.StatusUnauthorized, r.code)
		require.NotContains(t, string(r.body), bad)
	}
	r = a.send("POST", "/v1/queues/q/jobs", "Basic Zm9vOmJhcg==", spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusTooManyRequests, r.code)
	require.Equal(t, spool.CodeTooManyAttempts, r.errCode(t))
	require.NotEmpty(t, r.h.Get("Retry-After"))
	// Even the right key waits out the window.
	r = a.send("GET", "/v1/queues", secret, nil)
	require.Equal(t, http.StatusTooManyRequests, r.code)

	_, err := a.s.store.Queue(context.Background(), "q")
	require.ErrorIs(t, err, spool.ErrNotFound, "no failed request stored anything")
}

// Keys over the API: create (secret shown once), list (never a secret),
// use, revoke (refused at once), expire.
func TestKeysAPI(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{})
	admin := a.key(auth.CreateParams{Roles: []string{"admin"}})

	r := a.send("POST", "/v1/keys", admin, spool.CreateKeyRequest{Name: "reports worker", Roles: []string{"worker", "producer"}, Queues: []string{"reports.*"}})
	require.Equal(t, http.StatusCreated, r.code, "%s", r.body)
	var ck spool.CreatedKey
	require.NoError(t, json.Unmarshal(r.body, &ck))
	require.Equal(t, []string{"producer", "worker"}, ck.Roles)
	require.True(t, strings.HasPrefix(ck.Secret, "spool_"+ck.ID+"_"))

	r = a.send("GET", "/v1/keys", admin, nil)
	require.Equal(t, http.StatusOK, r.code)
	require.NotContains(t, string(r.body), ck.Secret)
	require.NotContains(t, string(r.body), admin)
	var kl spool.KeysResponse
	require.NoError(t, json.Unmarshal(r.body, &kl))
	require.Len(t, kl.Keys, 2)

	for _, bad := range []spool.CreateKeyRequest{
		{Name: "x"},
		{Name: "x", Roles: []string{"root"}},
		{Name: "", Roles: []string{"admin"}},
		{Name: "x", Roles: []string{"worker"}, Queues: []string{"Bad/Name"}},
	} {
		r = a.send("POST", "/v1/keys", admin, bad)
		require.Equal(t, http.StatusBadRequest, r.code, "%+v: %s", bad, r.body)
	}

	r = a.send("POST", "/v1/queues/reports.daily/jobs", ck.Secret, spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusAccepted, r.code, "%s", r.body)

	r = a.send("DELETE", "/v1/keys/"+ck.ID, admin, nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	r = a.send("POST", "/v1/queues/reports.daily/jobs", ck.Secret, spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusUnauthorized, r.code, "a revoked key is refused at once")
	r = a.send("DELETE", "/v1/keys/0000000000000000", admin, nil)
	require.Equal(t, http.StatusNotFound, r.code)

	short := a.key(auth.CreateParams{Roles: []string{"viewer"}, Expires: time.Nanosecond})
	r = a.send("GET", "/v1/queues", short, nil)
	require.Equal(t, http.StatusUnauthorized, r.code, "an expired key is refused")

	// The audit log has the creation and the revocation, by the admin key.
	r = a.send("GET", "/v1/audit", admin, nil)
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	var al spool.AuditResponse
	require.NoError(t, json.Unmarshal(r.body, &al))
	require.Len(t, al.Entries, 2)
	adminID, _ := auth.ParseSecret(admin)
	require.Equal(t, "DELETE /v1/keys/{key}", al.Entries[0].Action)
	require.Equal(t, "/v1/keys/"+ck.ID, al.Entries[0].Resource)
	require.Equal(t, "POST /v1/keys", al.Entries[1].Action)
	require.Equal(t, "key/"+ck.ID, al.Entries[1].Resource)
	for _, e := range al.Entries {
		require.Equal(t, adminID, e.KeyID)
		require.Contains(t, e.RemoteAddr, "127.0.0.1")
	}
}

// Scopes limit a key to queue and topic name patterns everywhere.
func TestScopes(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{})
	admin := a.key(auth.CreateParams{Roles: []string{"admin"}})
	scoped := a.key(auth.CreateParams{Roles: []string{"producer", "worker", "viewer"}, Queues: []string{"reports.*", "news"}})

	enq := func(secret, queue string) answer {
		return a.send("POST", "/v1/queues/"+queue+"/jobs", secret, spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(`{"n":1}`)})
	}
	require.Equal(t, http.StatusAccepted, enq(scoped, "reports.daily").code)
	require.Equal(t, http.StatusForbidden, enq(scoped, "emails").code)
	other := enq(admin, "emails")
	require.Equal(t, http.StatusAccepted, other.code)
	var otherJob spool.Job
	require.NoError(t, json.Unmarshal(other.body, &otherJob))

	// Jobs of other queues are out of reach by id too.
	r := a.send("GET", "/v1/jobs/"+otherJob.ID, scoped, nil)
	require.Equal(t, http.StatusForbidden, r.code, "%s", r.body)
	r = a.send("DELETE", "/v1/jobs/"+otherJob.ID, scoped, nil)
	require.Equal(t, http.StatusForbidden, r.code)

	// A lease over several queues needs every one.
	r = a.send("POST", "/v1/leases", scoped, spool.LeaseRequest{Queues: []string{"reports.daily", "emails"}})
	require.Equal(t, http.StatusForbidden, r.code)
	r = a.send("POST", "/v1/leases", scoped, spool.LeaseRequest{Queues: []string{"reports.daily"}})
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)

	// Listing shows the queues in reach only.
	r = a.send("GET", "/v1/queues", scoped, nil)
	var ql spool.QueuesResponse
	require.NoError(t, json.Unmarshal(r.body, &ql))
	require.Len(t, ql.Queues, 1)
	require.Equal(t, "reports.daily", ql.Queues[0].Name)

	// SSE: a filter beyond reach is refused.
	r = a.send("GET", "/v1/events?queue=emails", scoped, nil)
	require.Equal(t, http.StatusForbidden, r.code)

	// A publish needs every subscribed queue: refused whole.
	for _, q := range []string{"news", "emails"} {
		require.Equal(t, http.StatusOK, a.send("PUT", "/v1/topics/news/subscriptions/"+q, admin, nil).code)
	}
	r = a.send("POST", "/v1/topics/news/messages", scoped, spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusForbidden, r.code, "%s", r.body)
	qi := a.send("GET", "/v1/queues/news", admin, nil)
	var info spool.QueueInfo
	require.NoError(t, json.Unmarshal(qi.body, &info))
	require.Zero(t, info.Counts[spool.StateReady], "nothing was published")
	require.Equal(t, http.StatusOK, a.send("DELETE", "/v1/topics/news/subscriptions/emails", admin, nil).code)
	r = a.send("POST", "/v1/topics/news/messages", scoped, spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusAccepted, r.code, "%s", r.body)
}

// A viewer sees no payloads or results unless its key allows them.
func TestViewerPayloads(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{})
	producer := a.key(auth.CreateParams{Roles: []string{"producer"}})
	viewer := a.key(auth.CreateParams{Roles: []string{"viewer"}})
	peeker := a.key(auth.CreateParams{Roles: []string{"viewer"}, CanViewPayloads: true})
	r := a.send("POST", "/v1/queues/q/jobs", producer, spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(`{"card":"4111"}`)})
	require.Equal(t, http.StatusAccepted, r.code)
	require.Contains(t, string(r.body), "4111")
	var j spool.Job
	require.NoError(t, json.Unmarshal(r.body, &j))

	for secret, sees := range map[string]bool{producer: true, viewer: false, peeker: true} {
		r = a.send("GET", "/v1/jobs/"+j.ID, secret, nil)
		require.Equal(t, http.StatusOK, r.code)
		require.Equal(t, sees, strings.Contains(string(r.body), "4111"), "%s", r.body)
	}
}

// Secrets never reach the logs, whatever happens to them.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	a := newAuthServer(t, Config{Logger: newDebugLogger(&logs)})
	secret := a.key(auth.CreateParams{Roles: []string{"admin"}})
	a.send("GET", "/v1/queues", secret, nil)
	a.send("GET", "/v1/queues", secret+"x", nil)
	a.send("GET", "/v1/queues", secret[:len(secret)-1]+"Z", nil)
	r := a.send("POST", "/v1/keys", secret, spool.CreateKeyRequest{Name: "n", Roles: []string{"worker"}})
	var ck spool.CreatedKey
	require.NoError(t, json.Unmarshal(r.body, &ck))
	a.send("DELETE", "/v1/keys/"+ck.ID, secret, nil)
	a.send("GET", "/v1/queues", ck.Secret, nil)
	out := logs.String()
	require.Contains(t, out, "authentication failed", "the failures are logged")
	for _, s := range []string{secret, ck.Secret, secret[len(secret)-20:], ck.Secret[len(ck.Secret)-20:]} {
		require.NotContains(t, out, s)
	}
}

// Beyond loopback, a server without keys refuses to start (and says how
// to make the first key), unless it is told it runs on a trusted network.
func TestServeRefusesOpenNetwork(t *testing.T) {
	t.Parallel()
	s := newInternalServer(t, Config{})
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	err = s.Serve(context.Background(), ln)
	require.ErrorContains(t, err, "spool keys create")

	open := newInternalServer(t, Config{InsecureOpenOnTrustedNetwork: true})
	requireServes(t, open)

	keyed := newInternalServer(t, Config{})
	_, err = keyed.keys.Create(context.Background(), auth.CreateParams{Name: "a", Roles: []string{"admin"}})
	require.NoError(t, err)
	requireServes(t, keyed)
}

// requireServes checks that s serves on 0.0.0.0 until stopped.
func requireServes(t *testing.T, s *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	port := ln.Addr().(*net.TCPAddr).Port
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://127.0.0.1:" + itoa(port) + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "server did not answer: %v", err)
		select {
		case err := <-done:
			t.Fatalf("Serve returned: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	require.NoError(t, <-done)
}

func itoa(n int) string { return strconv.Itoa(n) }

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newDebugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type shiftedClock struct{ d atomic.Int64 }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(time.Duration(c.d.Load())) }

// Audit entries older than the retention are purged.
func TestAuditRetention(t *testing.T) {
	t.Parallel()
	clock := &shiftedClock{}
	a := newAuthServer(t, Config{Clock: clock, AuditRetention: time.Hour})
	admin := a.key(auth.CreateParams{Roles: []string{"admin"}})
	require.Equal(t, http.StatusOK, a.send("PATCH", "/v1/queues/q", admin, map[string]any{"paused": true}).code)
	count := func() int {
		page, _, err := a.s.store.ListAudit(context.Background(), store.AuditParams{Limit: 10})
		require.NoError(t, err)
		return len(page)
	}
	require.Equal(t, 1, count())
	a.s.purgeAudit(context.Background())
	require.Equal(t, 1, count(), "kept within the retention")
	clock.d.Store(int64(2 * time.Hour))
	a.s.purgeAudit(context.Background())
	require.Equal(t, 0, count(), "purged after it")
}

// Two nodes on one PostgreSQL database: a key created on one works on the
// other, and a key revoked on one stops working on the other within the
// cache's second or two.
func TestKeysAcrossPostgresNodes(t *testing.T) {
	t.Parallel()
	base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPOOL_TEST_POSTGRES_URL is not set, and CI=true requires the PostgreSQL run (scripts/with-postgres sets it)")
		}
		t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
	}
	url, _ := testproc.FreshSchema(t, base, "keys_")
	n1 := newAuthServer(t, Config{Store: url})
	n2 := newAuthServer(t, Config{Store: url})

	// Both nodes run open until a key exists; the second learns within a
	// second that one does.
	require.Equal(t, http.StatusOK, n2.send("GET", "/v1/queues", "", nil).code)
	admin := n1.key(auth.CreateParams{Roles: []string{"admin"}})
	within := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * auth.CacheTTL)
		for !ok() {
			require.True(t, time.Now().Before(deadline), "%s: not within %s", what, 3*auth.CacheTTL)
			time.Sleep(20 * time.Millisecond)
		}
	}
	within("node 2 needs keys", func() bool { return n2.send("GET", "/v1/queues", "", nil).code == http.StatusUnauthorized })

	r := n1.send("POST", "/v1/keys", admin, spool.CreateKeyRequest{Name: "p", Roles: []string{"producer"}})
	require.Equal(t, http.StatusCreated, r.code)
	var p spool.CreatedKey
	require.NoError(t, json.Unmarshal(r.body, &p))
	r = n2.send("POST", "/v1/queues/q/jobs", p.Secret, spool.EnqueueRequest{Type: "t"})
	require.Equal(t, http.StatusAccepted, r.code, "a key made on node 1 works on node 2 at once: %s", r.body)

	require.Equal(t, http.StatusOK, n1.send("DELETE", "/v1/keys/"+p.ID, admin, nil).code)
	within("node 2 refuses the revoked key", func() bool {
		return n2.send("POST", "/v1/queues/q/jobs", p.Secret, spool.EnqueueRequest{Type: "t"}).code == http.StatusUnauthorized
	})
}

// A container's first admin key: created into the bootstrap file when no
// key exists, never again after.
func TestBootstrapKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "admin.key")
	data := filepath.Join(dir, "data")
	s, err := New(context.Background(), Config{DataDir: data, BootstrapKeyFile: file})
	require.NoError(t, err)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	secret := strings.TrimSpace(string(b))
	p, err := s.keys.Authenticate(context.Background(), secret)
	require.NoError(t, err)
	require.True(t, p.IsAdmin())
	fi, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.NoError(t, s.Close())

	// Keys exist now: a second start leaves the file alone.
	s, err = New(context.Background(), Config{DataDir: data, BootstrapKeyFile: filepath.Join(dir, "other.key")})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = os.Stat(filepath.Join(dir, "other.key"))
	require.ErrorIs(t, err, os.ErrNotExist)

	// An existing file on a store without keys is refused.
	_, err = New(context.Background(), Config{DataDir: filepath.Join(dir, "fresh"), BootstrapKeyFile: file})
	require.ErrorContains(t, err, "must not exist yet")
}
