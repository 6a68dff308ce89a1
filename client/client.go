package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/wire"
)

// DefaultTimeout bounds a call whose context has no deadline, unless
// WithTimeout says otherwise. Long-polls add their wait to it.
const DefaultTimeout = 30 * time.Second

// maxResponseBody bounds a successful answer: a full lease or batch answer
// of 1,000 jobs with 1 MiB payloads stays below it.
const maxResponseBody = 2 << 30

// Client talks to one Spool server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	hc        *http.Client
	timeout   time.Duration
	userAgent string
	// auth is the Authorization header ("Bearer <secret>"), "" for none.
	auth string
	// tls is the TLS configuration of the default transport (WithCAFile).
	tls   *tls.Config
	retry RetryPolicy
	// rand draws jitter in [0,1); sleep waits between retries. Tests
	// replace them to measure waits without waiting.
	rand  func() float64
	sleep func(ctx context.Context, d time.Duration) error
	// coalesce gathers concurrent enqueues into batches; nil when off.
	coalesce *coalescer
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient makes the Client send its requests with hc (its transport,
// proxy and TLS settings). hc.Timeout, if set, applies on top of the
// per-call timeouts; leave it zero so long-polls are not cut short.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("client: WithHTTPClient(nil)")
		}
		c.hc = hc
		return nil
	}
}

// WithTimeout sets the default per-call timeout, applied only when the
// caller's context has no deadline (default DefaultTimeout). It bounds the
// whole call, retries included: a retry whose wait (a Retry-After, say)
// would outlast it is not made. Long-polls get their wait on top of it.
// Zero or a negative value disables it.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		c.timeout = d
		return nil
	}
}

// WithAPIKey sends an API key's secret with every request
// ("Authorization: Bearer <secret>"). A server with keys answers requests
// without one 401 (errors.Is(err, spool.ErrUnauthorized)) and requests the
// key's roles or scopes do not allow 403 (spool.ErrForbidden).
func WithAPIKey(secret string) Option {
	return func(c *Client) error {
		secret = strings.TrimSpace(secret)
		if secret == "" {
			c.auth = ""
			return nil
		}
		if strings.ContainsAny(secret, "\r\n") {
			return errors.New("client: WithAPIKey: the secret holds a line break")
		}
		c.auth = "Bearer " + secret
		return nil
	}
}

// WithCAFile trusts the certificate authorities of a PEM file (besides
// the system's) for a server with TLS (https://) whose certificate they
// signed. It applies to the default transport, not to WithHTTPClient's.
func WithCAFile(path string) Option {
	return func(c *Client) error {
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("client: WithCAFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("client: WithCAFile: %s holds no PEM certificate", path)
		}
		if c.tls == nil {
			c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.tls.RootCAs = pool
		return nil
	}
}

// WithClientCertificate presents a client certificate (PEM files) to a
// server that asks for one (mutual TLS). It applies to the default
// transport, not to WithHTTPClient's.
func WithClientCertificate(certFile, keyFile string) Option {
	return func(c *Client) error {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("client: WithClientCertificate: %w", err)
		}
		if c.tls == nil {
			c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.tls.Certificates = []tls.Certificate{cert}
		return nil
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// New returns a Client for the server at serverURL, such as
// "http://127.0.0.1:7077". A URL with a path prefix ("https://host/spool")
// is kept: API paths are appended to it.
func New(serverURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(serverURL))
	if err != nil {
		return nil, fmt.Errorf("client: bad server URL %q: %w", serverURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("client: bad server URL %q: the scheme must be http or https", serverURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("client: bad server URL %q: no host", serverURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, timeout: DefaultTimeout, userAgent: "spool-go-client",
		retry: DefaultRetryPolicy, rand: mrand.Float64, sleep: sleepCtx}
	if err := WithCoalescing(DefaultCoalesce)(c); err != nil {
		return nil, err
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.hc == nil {
		t := newTransport()
		t.TLSClientConfig = c.tls
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// newTransport is http.DefaultTransport's settings with a connection pool
// sized for many concurrent producers and workers on one server.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// Close releases the Client's idle connections.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// call is one API request.
type call struct {
	method string
	path   string     // already escaped
	query  url.Values // optional
	header http.Header
	body   any // marshalled to JSON when not nil
	// wait is how long the server may hold the request (long-poll); it
	// extends the default timeout.
	wait time.Duration
	// repeat says which failures may be retried.
	repeat repeat
}

// response is what do returns for a 2xx answer.
type response struct {
	status int
	header http.Header
	// tries is how many times the request was sent.
	tries int
}

// do sends a call, retrying temporary failures as the retry policy and the
// call's repeat mode allow, and decodes a 2xx answer's JSON body into out
// (when not nil). Error answers become *Error; transport failures are
// *TransportError. After retries, the error of the last try is returned.
// The default timeout, when it applies, bounds the whole call, retries
// included.
func (c *Client) do(ctx context.Context, cl call, out any) (*response, error) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout+cl.wait)
		defer cancel()
	}
	var body []byte
	if cl.body != nil {
		b, err := encodeBody(cl.body)
		if err != nil {
			return nil, fmt.Errorf("encoding %s %s: %w", cl.method, cl.path, err)
		}
		body = b
	}
	var pushedBack error // the last back-pressure answer
	for try := 1; ; try++ {
		resp, err := c.once(ctx, cl, body, out)
		if err == nil {
			resp.tries = try
			return resp, nil
		}
		if ctx.Err() != nil && pushedBack != nil {
			// Cut short by the end of the context: what the server said
			// last is the answer.
			return nil, fmt.Errorf("%w (the last try was cut short: %w)", pushedBack, err)
		}
		if c.retry.MaxRetries == 0 || ctx.Err() != nil || !retryable(cl.repeat, err) {
			return nil, err
		}
		// Back pressure is retried until ctx ends; other failures
		// MaxRetries times, and not into a wait past the deadline.
		pressure := backPressure(err)
		if pressure && c.retry.FailWhenFull || !pressure && try > c.retry.MaxRetries {
			return nil, err
		}
		d := c.backoff(try, err)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			if pressure {
				// No try fits before the deadline: wait it out, then
				// answer with the server's refusal.
				_ = c.sleep(ctx, time.Until(dl))
			}
			return nil, err // the wait would outlast the caller's deadline
		}
		if pressure {
			pushedBack = err
		}
		if c.sleep(ctx, d) != nil {
			return nil, err
		}
		if out != nil {
			// A try that failed while decoding may have filled part of out.
			reflect.ValueOf(out).Elem().SetZero()
		}
	}
}

// encodeBody encodes a request body: the hot ones (jobs to enqueue, acks)
// with package wire, the others, and any the fast path leaves, with
// encoding/json.
func encodeBody(v any) ([]byte, error) {
	var (
		b  []byte
		ok bool
	)
	switch v := v.(type) {
	case spool.BatchEnqueueRequest:
		b, ok = wire.TryAppendBatchEnqueueRequest(make([]byte, 0, 160*len(v.Jobs)+16), &v)
	case spool.EnqueueRequest:
		b, ok = wire.TryAppendEnqueueRequest(make([]byte, 0, 256), &v)
	case spool.AcksRequest:
		b, ok = wire.TryAppendAcksRequest(make([]byte, 0, 128*len(v.Acks)+16), &v)
	}
	if ok {
		return b, nil
	}
	return json.Marshal(v)
}

// once sends one try of a call.
func (c *Client) once(ctx context.Context, cl call, body []byte, out any) (*response, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + cl.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cl.method, cl.path, err)
	}
	u.Path = p
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cl.method, cl.path, err)
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &TransportError{Method: cl.method, URL: u.Redacted(), Err: unwrapURLError(err)}
	}
	defer func() {
		// Drain a little so the connection goes back to the pool.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, decodeError(resp.StatusCode, resp.Header, b)
	}
	if out != nil {
		if err := decodeBody(resp, out); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, &TransportError{Method: cl.method, URL: u.Redacted(), Err: fmt.Errorf("reading the answer: %w", err)}
		}
	}
	return &response{status: resp.StatusCode, header: resp.Header}, nil
}

// bodyPool holds buffers for answers; decoding copies what it keeps.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody keeps the pool from hoarding the buffers of rare big
// answers.
const maxPooledBody = 4 << 20

// decodeBody reads a 2xx answer whole, into a buffer sized from its
// Content-Length when given, and decodes its JSON into out. (A
// json.Decoder would grow its buffer step by step over a big answer.)
func decodeBody(resp *http.Response, out any) error {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}()
	if n := resp.ContentLength; n > 0 && n <= maxResponseBody {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBody)); err != nil {
		return err
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		return io.EOF
	}
	if r, ok := out.(*spool.JobsResponse); ok {
		// The answers of batch enqueues and leases: the hot path.
		return wire.DecodeJobsResponse(buf.Bytes(), r)
	}
	return json.Unmarshal(buf.Bytes(), out)
}

// TransportError is a request that got no answer from the server: it could
// not connect, the connection broke, or the context ended first. Whether
// the server acted on the request is unknown; retry with an idempotency key.
type TransportError struct {
	Method string
	URL    string
	Err    error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err)
}

// Unwrap returns the cause (a *net.OpError, context.DeadlineExceeded, ...).
func (e *TransportError) Unwrap() error { return e.Err }

// Timeout reports whether the request ran out of time.
func (e *TransportError) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// unwrapURLError drops the *url.Error layer, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// pathEscape escapes one path segment (a queue name or a job id).
func pathEscape(s string) string { return url.PathEscape(s) }
