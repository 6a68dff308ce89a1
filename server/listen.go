package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the connection limits.
const (
	// DefaultMaxConnections caps the connections a server holds at once.
	DefaultMaxConnections = 10_000
	// DefaultMaxWaitsPerKey caps the long-polls and event streams one key
	// (or, without keys, one client address) holds at once.
	DefaultMaxWaitsPerKey = 100
)

// loadTLS builds the TLS configuration of Config.TLSCert and TLSKey (nil
// without them): TLS 1.2 or later, and with TLSClientCA, client
// certificates signed by that authority are required (mutual TLS).
func loadTLS(c Config) (*tls.Config, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		if c.TLSClientCA != "" {
			return nil, errors.New("TLSClientCA needs TLSCert and TLSKey")
		}
		return nil, nil
	}
	if c.TLSCert == "" || c.TLSKey == "" {
		return nil, errors.New("TLSCert and TLSKey go together: give both")
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.TLSClientCA != "" {
		pem, err := os.ReadFile(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("reading the client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.TLSClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// limitListener holds at most max connections open: beyond, a new
// connection is answered 503 server_busy (with Retry-After) and closed at
// once, so a client flooding the server with idle or slow connections
// cannot exhaust its file descriptors, and others get a clear answer.
type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	log  *slog.Logger
	// refused counts connections turned away.
	refused atomic.Int64
}

func newLimitListener(ln net.Listener, max int, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, max: int64(max), log: log}
}

// busyAnswer is written on a connection beyond the limit.
var busyAnswer = func() []byte {
	body := `{"error":{"code":"server_busy","message":"the server holds as many connections as it may; retry"}}` + "\n"
	return []byte(fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}()

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		if n := l.refused.Add(1); n == 1 || n%1000 == 0 {
			l.log.Warn("connection limit reached: refusing connections", "max_connections", l.max, "refused", n)
		}
		// Answer without waiting on the client: a short write deadline,
		// then close.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(busyAnswer)
		_ = c.Close()
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// waitCounter counts the long-polls and event streams each key (or client
// address) holds, and refuses one beyond the cap.
type waitCounter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newWaitCounter(max int) *waitCounter { return &waitCounter{max: max, n: make(map[string]int)} }

// acquire takes a slot for who, or reports false at the cap; release
// gives it back.
func (w *waitCounter) acquire(who string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[who] >= w.max {
		return false
	}
	w.n[who]++
	return true
}

func (w *waitCounter) release(who string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[who]--; w.n[who] <= 0 {
		delete(w.n, who)
	}
}
