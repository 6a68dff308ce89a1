package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/testpki"
)

// serveOn runs s.Serve on a loopback port until the test ends and
// returns the address.
func serveOn(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

func tlsClient(t *testing.T, caFile string, certs ...tls.Certificate) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	s := newInternalServer(t, Config{TLSCert: p.CertFile, TLSKey: p.KeyFile})
	addr := serveOn(t, s)

	res, err := tlsClient(t, p.CAFile).Get("https://" + addr + "/v1/queues")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.GreaterOrEqual(t, res.TLS.Version, uint16(tls.VersionTLS12))

	// A client that does not trust the CA, and plain HTTP, get nothing.
	_, err = tlsClient(t, p.OtherCA).Get("https://" + addr + "/healthz")
	require.Error(t, err)
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true}}} //nolint:gosec // checks the refusal of old TLS
	_, err = old.Get("https://" + addr + "/healthz")
	require.Error(t, err, "TLS 1.1 is refused")
}

func TestMutualTLS(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	s := newInternalServer(t, Config{TLSCert: p.CertFile, TLSKey: p.KeyFile, TLSClientCA: p.CAFile})
	addr := serveOn(t, s)

	_, err := tlsClient(t, p.CAFile).Get("https://" + addr + "/healthz")
	require.Error(t, err, "no client certificate: refused")

	cert, err := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKeyFile)
	require.NoError(t, err)
	res, err := tlsClient(t, p.CAFile, cert).Get("https://" + addr + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	// The SDK over mutual TLS: a CA file and a client certificate.
	c, err := client.New("https://"+addr, client.WithCAFile(p.CAFile), client.WithClientCertificate(p.ClientCertFile, p.ClientKeyFile))
	require.NoError(t, err)
	defer c.Close()
	j, err := c.Push(context.Background(), "tls", "t", map[string]int{"n": 1})
	require.NoError(t, err)
	require.Equal(t, "tls", j.Queue)
	bare, err := client.New("https://"+addr, client.WithCAFile(p.CAFile))
	require.NoError(t, err)
	defer bare.Close()
	_, err = bare.Queues(context.Background())
	require.Error(t, err, "the SDK without a client certificate is refused")

	_, err = New(context.Background(), Config{DataDir: t.TempDir(), TLSClientCA: p.CAFile})
	require.ErrorContains(t, err, "TLSClientCA needs TLSCert")
}

// Many idle connections cannot exhaust the server: beyond the cap a new
// connection is answered 503 server_busy at once, and once the idle ones
// go, normal clients are served again.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	s := newInternalServer(t, Config{MaxConnections: 20})
	addr := serveOn(t, s)
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range 20 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		idle = append(idle, c)
	}
	// The 21st connection gets the busy answer (the listener counts
	// connections as it accepts them: poll until all 20 are in).
	deadline := time.Now().Add(10 * time.Second)
	var answer string
	for {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.Contains(line, "503") {
			answer = line
			break
		}
		require.True(t, time.Now().Before(deadline), "never refused; last answer %q", line)
	}
	require.Contains(t, answer, "503")

	for _, c := range idle {
		c.Close()
	}
	idle = nil
	deadline = time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "not served again: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
}

// One key cannot hold more long-polls than its cap; others are served.
func TestWaitsPerKey(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{MaxWaitsPerKey: 2})
	w1 := a.key(auth.CreateParams{Roles: []string{"worker"}})
	w2 := a.key(auth.CreateParams{Roles: []string{"worker"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{}, 2)
	for range 2 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", a.url+"/v1/leases", strings.NewReader(`{"queues":["q"],"wait":"20s"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+w1)
			started <- struct{}{}
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
	}
	<-started
	<-started
	id, _ := auth.ParseSecret(w1)
	held := func() int {
		a.s.waits.mu.Lock()
		defer a.s.waits.mu.Unlock()
		return a.s.waits.n[id]
	}
	deadline := time.Now().Add(10 * time.Second)
	for held() < 2 {
		require.True(t, time.Now().Before(deadline), "the two long-polls never started")
		time.Sleep(5 * time.Millisecond)
	}
	r := a.send("POST", "/v1/leases", w1, map[string]any{"queues": []string{"q"}, "wait": "1ms"})
	require.Equal(t, http.StatusTooManyRequests, r.code, "%s", r.body)
	require.Equal(t, "too_many_waits", r.errCode(t))
	require.NotEmpty(t, r.h.Get("Retry-After"))
	r = a.send("POST", "/v1/leases", w2, map[string]any{"queues": []string{"q"}, "wait": "1ms"})
	require.Equal(t, http.StatusOK, r.code, "another key is served: %s", r.body)
}

// Slow clients (headers that stop half-way, or nothing sent at all) hold
// connections (until the 10 s header timeout), and while they do, normal
// clients are served; the figures (memory, goroutines) are logged.
func TestSlowClientsDoNotStarveOthers(t *testing.T) {
	t.Parallel()
	s := newInternalServer(t, Config{MaxConnections: 300})
	addr := serveOn(t, s)
	const slow = 200
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range slow {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		if i%2 == 0 {
			_, err = io.WriteString(c, "POST /v1/queues/q/jobs HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
			require.NoError(t, err)
		}
		held = append(held, c)
	}
	start := time.Now()
	for range 20 {
		res, err := http.Get("http://" + addr + "/healthz")
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d slow connections held; 20 normal requests served in %s; heap %d KiB -> %d KiB, goroutines %d",
		slow, time.Since(start).Round(time.Millisecond), before.HeapAlloc>>10, after.HeapAlloc>>10, runtime.NumGoroutine())
}

// A client that stops half-way through its headers is disconnected after
// the header timeout.
func TestReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	s := newInternalServer(t, Config{ReadHeaderTimeout: 200 * time.Millisecond})
	addr := serveOn(t, s)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	start := time.Now()
	_, err = io.ReadAll(c) // returns once the server closes the connection
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second, "closed by the header timeout, not the test's deadline")
}

// With mutual TLS, a client certificate whose common name is
// "spool-key:<id>" authenticates as that key, without a secret; a revoked
// key's certificate is refused, and other certificates still need a key.
func TestClientCertificateNamesKey(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	s := newInternalServer(t, Config{TLSCert: p.CertFile, TLSKey: p.KeyFile, TLSClientCA: p.CAFile})
	addr := serveOn(t, s)
	k, err := s.keys.Create(context.Background(), auth.CreateParams{Name: "w", Roles: []string{"viewer"}})
	require.NoError(t, err)
	certFile, keyFile := p.Client(t, "spool-key:"+k.ID)
	named, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	plain, err := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKeyFile)
	require.NoError(t, err)

	get := func(cert tls.Certificate, path string) int {
		res, err := tlsClient(t, p.CAFile, cert).Get("https://" + addr + path)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, get(named, "/v1/queues"))
	require.Equal(t, http.StatusUnauthorized, get(plain, "/v1/queues"), "a certificate that names no key needs a key")
	_, err = s.keys.Revoke(context.Background(), k.ID)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, get(named, "/v1/queues"))
}
