package server

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/engine"
)

// route is one endpoint. The table of routes is data: the mux is built from
// it, and a test checks it against the OpenAPI document so the two cannot
// drift.
type route struct {
	// perm is the permission a request needs (auth.Public for none). Every
	// route declares one: the route table is refused without it, and a
	// test checks every route against every role.
	perm    auth.Permission
	method  string
	pattern string
	// query lists the query parameters the endpoint accepts; any other is
	// refused with 400.
	query []string
	// ownQuery marks a raw endpoint that checks its query string itself
	// (a parameter it takes may repeat).
	ownQuery bool
	// longPoll routes may wait up to spool.MaxWait on top of the request
	// timeout; so may the bulk actions, which work through a queue a
	// batch at a time.
	longPoll bool
	// serve runs a JSON endpoint built by endpoint; raw is for the few
	// endpoints that write their own answer (metrics, the OpenAPI file).
	serve func(c *call) (status int, body any, err error)
	raw   http.Handler
	// page marks a dashboard page (HTML for people, not part of the API
	// document); pages check their own query strings.
	page bool
}

// routeTable lists every endpoint of the server.
func (s *Server) routeTable() []route {
	return append([]route{
		// Producers.
		{perm: auth.Enqueue, method: http.MethodPost, pattern: "/v1/queues/{queue}/jobs", serve: endpoint(s.enqueue)},
		{perm: auth.Enqueue, method: http.MethodPost, pattern: "/v1/queues/{queue}/jobs:batch", serve: endpoint(s.enqueueBatch)},
		// Topics.
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/topics", serve: endpoint(s.listTopics)},
		{perm: auth.Admin, method: http.MethodPut, pattern: "/v1/topics/{topic}/subscriptions/{queue}", serve: endpoint(s.subscribe)},
		{perm: auth.Admin, method: http.MethodDelete, pattern: "/v1/topics/{topic}/subscriptions/{queue}", serve: endpoint(s.unsubscribe)},
		{perm: auth.Publish, method: http.MethodPost, pattern: "/v1/topics/{topic}/messages", serve: endpoint(s.publish)},
		{perm: auth.Publish, method: http.MethodPost, pattern: "/v1/topics/{topic}/messages:batch", serve: endpoint(s.publishBatch)},
		// Status.
		{perm: auth.Read, method: http.MethodGet, pattern: "/v1/jobs/{id}", query: []string{"wait"}, longPoll: true, serve: endpoint(s.getJob)},
		{perm: auth.Cancel, method: http.MethodDelete, pattern: "/v1/jobs/{id}", serve: endpoint(s.cancelJob)},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/jobs/{id}/retry", serve: endpoint(s.retryJob)},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/jobs/{id}/delete", serve: endpoint(s.deleteJob)},
		{perm: auth.Read, method: http.MethodGet, pattern: "/v1/jobs/{id}/parents", serve: endpoint(s.jobParents)},
		{perm: auth.Read, method: http.MethodGet, pattern: "/v1/events", query: []string{"queue", "job", "stats"}, ownQuery: true, raw: http.HandlerFunc(s.serveEvents)},
		// Workers.
		{perm: auth.Work, method: http.MethodPost, pattern: "/v1/leases", longPoll: true, serve: endpoint(s.lease)},
		{perm: auth.Work, method: http.MethodPost, pattern: "/v1/jobs/{id}/heartbeat", serve: endpoint(s.heartbeat)},
		{perm: auth.Work, method: http.MethodPost, pattern: "/v1/jobs/{id}/complete", serve: endpoint(s.complete)},
		{perm: auth.Work, method: http.MethodPost, pattern: "/v1/jobs/{id}/fail", serve: endpoint(s.fail)},
		{perm: auth.Work, method: http.MethodPost, pattern: "/v1/jobs/{id}/release", serve: endpoint(s.release)},
		{perm: auth.Work, method: http.MethodPost, pattern: "/v1/acks", serve: endpoint(s.acks)},
		// Queues.
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/queues", serve: endpoint(s.listQueues)},
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/queues/{queue}", serve: endpoint(s.getQueue)},
		{perm: auth.Admin, method: http.MethodPatch, pattern: "/v1/queues/{queue}", serve: endpoint(s.patchQueue)},
		{perm: auth.Admin, method: http.MethodDelete, pattern: "/v1/queues/{queue}", longPoll: true, serve: endpoint(s.deleteQueue)},
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/queues/{queue}/jobs", query: []string{"state", "type", "tag", "ordering_key", "payload_field", "payload_value", "limit", "cursor"}, serve: endpoint(s.listJobs)},
		// Bulk actions on the jobs of a queue that pass a filter.
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/queues/{queue}/jobs:retry", longPoll: true, serve: endpoint(s.bulk(engine.BulkRetry))},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/queues/{queue}/jobs:cancel", longPoll: true, serve: endpoint(s.bulk(engine.BulkCancel))},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/queues/{queue}/jobs:delete", longPoll: true, serve: endpoint(s.bulk(engine.BulkDelete))},
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/queues/{queue}/stats", query: []string{"history"}, serve: endpoint(s.queueStats)},
		// Schedules.
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/schedules", serve: endpoint(s.listSchedules)},
		{perm: auth.View, method: http.MethodGet, pattern: "/v1/schedules/{name}", serve: endpoint(s.getSchedule)},
		{perm: auth.Admin, method: http.MethodPut, pattern: "/v1/schedules/{name}", serve: endpoint(s.putSchedule)},
		{perm: auth.Admin, method: http.MethodDelete, pattern: "/v1/schedules/{name}", serve: endpoint(s.deleteSchedule)},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/schedules/{name}/pause", serve: endpoint(s.pauseSchedule)},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/schedules/{name}/resume", serve: endpoint(s.resumeSchedule)},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/schedules/{name}/run", serve: endpoint(s.runSchedule)},
		// Keys and the audit log.
		{perm: auth.Admin, method: http.MethodGet, pattern: "/v1/keys", serve: endpoint(s.keysList)},
		{perm: auth.Admin, method: http.MethodPost, pattern: "/v1/keys", serve: endpoint(s.keysCreate)},
		{perm: auth.Admin, method: http.MethodDelete, pattern: "/v1/keys/{key}", serve: endpoint(s.keysRevoke)},
		{perm: auth.Admin, method: http.MethodGet, pattern: "/v1/audit", query: []string{"limit", "cursor"}, serve: endpoint(s.auditList)},
		// Operations.
		{perm: auth.Public, method: http.MethodGet, pattern: "/healthz", serve: endpoint(s.healthz)},
		{perm: auth.Public, method: http.MethodGet, pattern: "/readyz", serve: endpoint(s.readyz)},
		{perm: auth.View, method: http.MethodGet, pattern: "/metrics", raw: s.metricsHandler()},
		{perm: auth.Public, method: http.MethodGet, pattern: "/v1/openapi.json", raw: http.HandlerFunc(serveOpenAPI)},
		// Dashboard sessions (session.go): the handlers authenticate the key themselves.
		{perm: auth.Public, method: http.MethodPost, pattern: "/v1/session", serve: endpoint(s.createSession)},
		{perm: auth.Public, method: http.MethodDelete, pattern: "/v1/session", serve: endpoint(s.deleteSession)},
	}, s.pageRoutes()...)
}

// pageRoutes are the dashboard's pages (auth.View) and its embedded
// assets (auth.Public: they hold no data).
func (s *Server) pageRoutes() []route {
	if s.dash == nil {
		return nil
	}
	var out []route
	for _, p := range s.dash.Pages() {
		perm := auth.View
		if p.Public {
			perm = auth.Public
		}
		out = append(out, route{perm: perm, method: http.MethodGet, pattern: p.Pattern, raw: p.Handler, ownQuery: true, page: true})
	}
	return out
}

// call is one request in flight as an endpoint sees it: the writer (for
// headers), the request, and the path parameters, already validated.
type call struct {
	s *Server
	w http.ResponseWriter
	r *http.Request
	// queue is the {queue} path parameter, a valid queue name.
	queue string
	// id is the {id} path parameter, a UUID in canonical form.
	id string
	// query holds the (accepted) query parameters.
	query url.Values
	// p is who the request runs as; it holds the route's permission.
	p *auth.Principal
	// auditResource, when set by the endpoint, names what an audited
	// request changed (default: the request path).
	auditResource string
}

// noBody is the request type of endpoints that take no body. An empty body
// or an empty JSON object is accepted; anything else is refused.
type noBody struct{}

// Validation hooks the endpoint helper calls on a decoded request.
type (
	limitsValidator interface{ Validate(spool.Limits) error }
	plainValidator  interface{ Validate() error }
	// headerBinder folds request headers into the request before it is
	// validated (Idempotency-Key).
	headerBinder interface{ bindHeaders(http.Header) error }
)

// endpoint is the one helper every JSON endpoint goes through: it decodes
// the body into a typed request (unknown fields and trailing data refused,
// size bounded), folds in headers, validates, and runs fn. The route's
// wrapper (serveRoute) has already checked the path and query parameters
// and bounded the context; it writes fn's answer or the error shape.
func endpoint[Req, Resp any](fn func(ctx context.Context, c *call, req *Req) (int, Resp, error)) func(*call) (int, any, error) {
	return func(c *call) (int, any, error) {
		req := new(Req)
		if err := c.s.decodeBody(c, req); err != nil {
			return 0, nil, err
		}
		if b, ok := any(req).(headerBinder); ok {
			if err := b.bindHeaders(c.r.Header); err != nil {
				return 0, nil, err
			}
		}
		var err error
		switch v := any(req).(type) {
		case limitsValidator:
			err = v.Validate(c.s.cfg.Limits)
		case plainValidator:
			err = v.Validate()
		}
		if err != nil {
			return 0, nil, err
		}
		status, resp, err := fn(c.r.Context(), c, req)
		if err != nil {
			return 0, nil, err
		}
		return status, resp, nil
	}
}

// serveRoute wraps a route's endpoint: it bounds the context, checks the
// query and path parameters, runs the endpoint and writes its answer.
func (s *Server) serveRoute(rt route) http.Handler {
	if !rt.perm.Valid() {
		panic("server: route " + rt.method + " " + rt.pattern + " declares no permission")
	}
	if rt.raw != nil {
		if rt.ownQuery {
			return s.authorize(rt, rt.raw)
		}
		return s.authorize(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := parseQuery(r.URL.RawQuery, rt.query); err != nil {
				s.writeError(w, r, err)
				return
			}
			rt.raw.ServeHTTP(w, r)
		}))
	}
	timeout := s.cfg.RequestTimeout
	if rt.longPoll {
		timeout += spool.MaxWait
	}
	hasQueue := strings.Contains(rt.pattern, "{queue}")
	hasID := strings.Contains(rt.pattern, "{id}")
	audit := audited(rt)
	return s.authorize(rt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		c := &call{s: s, w: w, r: r.WithContext(ctx), p: principalOf(r.Context())}
		var (
			status int
			body   any
		)
		err := s.prepare(c, rt, hasQueue, hasID)
		if err == nil {
			status, body, err = rt.serve(c)
		}
		if err != nil {
			s.writeError(w, c.r, err)
			return
		}
		if audit {
			s.audit(c, rt)
		}
		if !c.p.SeesPayloads() {
			body = redact(body)
		}
		s.writeJSON(w, status, body)
	}))
}

// prepare checks the query and path parameters of a call.
func (s *Server) prepare(c *call, rt route, hasQueue, hasID bool) error {
	q, err := parseQuery(c.r.URL.RawQuery, rt.query)
	if err != nil {
		return err
	}
	c.query = q
	if hasQueue {
		c.queue = c.r.PathValue("queue")
		// Internal queues (names starting with '_') are refused, but the
		// webhook deliveries' may be read (GET): they are visible.
		readInternal := c.r.Method == http.MethodGet && c.queue == engine.WebhookQueue
		if err := spool.ValidateQueueName(c.queue); err != nil && !readInternal {
			return err
		}
	}
	if hasID {
		id, err := parseJobID(c.r.PathValue("id"))
		if err != nil {
			return err
		}
		c.id = id
		if err := s.checkJobScope(c.r.Context(), c, id); err != nil {
			return err
		}
	}
	if strings.Contains(rt.pattern, "{name}") {
		if err := s.checkScheduleScope(c.r.Context(), c, c.r.PathValue("name")); err != nil {
			return err
		}
	}
	return nil
}

// parseQuery parses a raw query, refusing parameters not in allowed and
// parameters given twice.
func parseQuery(raw string, allowed []string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, spool.Invalidf("the query string is malformed: %v", err)
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, spool.Invalidf("unknown query parameter %q: this endpoint takes none", truncate(k, 40))
			}
			return nil, spool.Invalidf("unknown query parameter %q; this endpoint accepts %s", truncate(k, 40), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, spool.Invalidf("query parameter %q is given %d times; give it once", k, len(vs))
		}
	}
	return q, nil
}

// parseJobID checks that s is a job id (a UUID in its 36-character text
// form) and returns it in canonical lower-case form.
func parseJobID(s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", spool.Invalidf("job id %q is not a UUID such as \"0190f5e4-7b8a-7c3d-9e2f-1a2b3c4d5e6f\"", truncate(s, 40))
	}
	return u.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// root is the top-level handler: recovery, request metrics, path
// canonicalisation, and JSON answers for unknown paths and wrong methods.
type root struct {
	s   *Server
	mux *http.ServeMux
	m   *httpMetrics
}

func (s *Server) newRoot(m *httpMetrics) *root {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		mux.Handle(rt.method+" "+rt.pattern, s.serveRoute(rt))
	}
	return &root{s: s, mux: mux, m: m}
}

func (h *root) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &respWriter{ResponseWriter: w}
	label, start := "unmatched", time.Now()
	h.m.inFlight.Inc()
	defer h.m.inFlight.Dec()
	defer func() {
		if v := recover(); v != nil {
			h.s.recovered(rw, r, v)
		}
		h.m.observe(label, rw.status(), time.Since(start))
		h.s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "route", label,
			"status", rw.status(), "duration", time.Since(start), "remote_addr", r.RemoteAddr)
	}()
	if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && p != cleanPath(p) {
		h.s.writeError(rw, r, &apiError{status: http.StatusBadRequest, code: spool.CodeInvalid,
			msg: "the path " + truncate(p, 80) + " has an empty, '.' or '..' segment: a queue name or job id is missing"})
		return
	}
	if !h.s.guard(rw, r) {
		return
	}
	handler, pattern := h.mux.Handler(r)
	if pattern == "" {
		// No route matched: ask the mux whether it is 404 or 405 (and
		// which methods are allowed), then answer with the error shape.
		rec := &recorder{header: make(http.Header)}
		handler.ServeHTTP(rec, r)
		if rec.code == http.StatusMethodNotAllowed {
			allow := rec.header.Get("Allow")
			rw.Header().Set("Allow", allow)
			h.s.writeError(rw, r, &apiError{status: http.StatusMethodNotAllowed, code: spool.CodeMethodNotAllowed,
				msg: "method " + r.Method + " is not allowed on " + truncate(r.URL.Path, 80) + "; allowed: " + allow})
			return
		}
		h.s.writeError(rw, r, &apiError{status: http.StatusNotFound, code: spool.CodeNotFound,
			msg: "no endpoint at " + truncate(r.URL.Path, 80) + "; see /v1/openapi.json"})
		return
	}
	label = pattern
	h.mux.ServeHTTP(rw, r)
}

// cleanPath is the canonical form of a URL path, as http.ServeMux computes
// it: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// recorder captures what the mux's own 404/405 handlers would answer.
type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// respWriter remembers whether and with what status an answer was started.
type respWriter struct {
	http.ResponseWriter
	code int
}

func (w *respWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through (promhttp and future streaming endpoints).
func (w *respWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *respWriter) started() bool { return w.code != 0 }

func (w *respWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// httpMetrics counts requests by route and status, times them, and counts
// those in flight.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spool_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" for unknown paths) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "spool_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern and status code (long-polls include their wait).",
			// 50µs to about 13s: a 503 of a full queue, an fsync'd
			// enqueue and a long-poll all land in their own buckets.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 19),
		}, []string{"route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "spool_http_requests_in_flight",
			Help: "HTTP requests being served, long-polls included.",
		}),
	}
}

func (m *httpMetrics) observe(route string, code int, took time.Duration) {
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(route, c).Inc()
	m.duration.WithLabelValues(route, c).Observe(took.Seconds())
}
