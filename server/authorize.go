package server

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

// principalKey keys the request's principal in its context.
type principalKey struct{}

// principalOf returns the principal authorize stored in ctx (the open
// principal if none: handlers reached without authorize, such as tests of
// the raw handlers).
func principalOf(ctx context.Context) *auth.Principal {
	if p, ok := ctx.Value(principalKey{}).(*auth.Principal); ok {
		return p
	}
	return auth.OpenPrincipal
}

// Defaults of the failed-authentication limit.
const (
	DefaultAuthFailures = 10
	authFailureWindow   = time.Minute
	// DefaultAuditRetention is how long audit entries are kept.
	DefaultAuditRetention = 90 * 24 * time.Hour
)

// authorize wraps a route's handler: it finds who the request runs as
// (authenticate) and refuses it unless that principal holds the route's
// permission and reaches the route's {queue} and {topic}.
func (s *Server) authorize(rt route, next http.Handler) http.Handler {
	hasQueue := strings.Contains(rt.pattern, "{queue}")
	hasTopic := strings.Contains(rt.pattern, "{topic}")
	// Waits: the routes that may hold a request open for long.
	waits := rt.pattern == "/v1/leases" || rt.pattern == "/v1/events" || (rt.pattern == "/v1/jobs/{id}" && rt.method == http.MethodGet)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.perm == auth.Public {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			var ae *apiError
			if rt.page && errors.As(err, &ae) && ae.status == http.StatusUnauthorized &&
				r.Header.Get("Authorization") == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
				// A person without a session: to the sign-in page, and back.
				http.Redirect(w, r, "/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
				return
			}
			s.writeError(w, r, err)
			return
		}
		if !p.Can(rt.perm) {
			s.writeError(w, r, forbidden("key %s (roles %s) may not %s: %s %s needs the %s permission (see docs/security.md)",
				p.KeyID, rolesText(p.Roles), rt.perm, rt.method, rt.pattern, rt.perm))
			return
		}
		if hasQueue && !p.Reaches(r.PathValue("queue")) {
			s.writeError(w, r, outOfScope(p, "queue", r.PathValue("queue")))
			return
		}
		if hasTopic && !p.Reaches(r.PathValue("topic")) {
			s.writeError(w, r, outOfScope(p, "topic", r.PathValue("topic")))
			return
		}
		if waits {
			who := p.KeyID
			if who == "" {
				who = clientAddr(r.RemoteAddr)
			}
			if !s.waits.acquire(who) {
				s.writeError(w, r, &apiError{status: http.StatusTooManyRequests, code: spool.CodeTooManyWaits, retryAfter: 1,
					msg: fmt.Sprintf("%s holds %d long-polls and event streams already, the most one key may (--max-waits-per-key); end one or retry", waitHolder(p, r), s.cfg.MaxWaitsPerKey)})
				return
			}
			defer s.waits.release(who)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// waitHolder names who holds waits, for messages.
func waitHolder(p *auth.Principal, r *http.Request) string {
	if p.KeyID != "" {
		return "key " + p.KeyID
	}
	return "client " + clientAddr(r.RemoteAddr)
}

func rolesText(rs []auth.Role) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return strings.Join(out, ",")
}

func forbidden(format string, args ...any) error {
	return &apiError{status: http.StatusForbidden, code: spool.CodeForbidden, msg: fmt.Sprintf(format, args...)}
}

// outOfScope is the 403 of a name the key's scopes do not cover.
func outOfScope(p *auth.Principal, kind, name string) error {
	return forbidden("key %s does not reach %s %q: its scopes are %s", p.KeyID, kind, truncate(name, 140), strings.Join(p.Scopes, ", "))
}

// authenticate returns the principal of a request: the key its
// Authorization header names, or the open principal while no key exists.
// Addresses that failed too often are refused (429) before any check.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	addr := clientAddr(r.RemoteAddr)
	if wait, blocked := s.failures.Blocked(addr); blocked {
		secs := int((wait + time.Second - 1) / time.Second)
		return nil, &apiError{status: http.StatusTooManyRequests, code: spool.CodeTooManyAttempts, retryAfter: secs,
			msg: fmt.Sprintf("too many failed authentications from %s; retry after %d s with a valid key", addr, secs)}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		required, err := s.keys.Required(r.Context())
		if err != nil {
			return nil, err
		}
		if !required {
			return auth.OpenPrincipal, nil
		}
		if secret, ok := sessionSecret(r); ok {
			return s.authenticateSession(r, addr, secret)
		}
		if id, ok := certKeyID(r); ok {
			p, err := s.keys.ByID(r.Context(), id)
			if errors.Is(err, spool.ErrUnauthorized) {
				s.failures.Fail(addr)
				return nil, &apiError{status: http.StatusUnauthorized, code: spool.CodeUnauthorized,
					msg: "the client certificate names key " + id + ", which is unknown, revoked or expired"}
			}
			return p, err
		}
		return nil, &apiError{status: http.StatusUnauthorized, code: spool.CodeUnauthorized,
			msg: "this server requires an API key: send \"Authorization: Bearer <secret>\" (spool --api-key, SPOOL_API_KEY)"}
	}
	scheme, secret, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		s.failures.Fail(addr)
		return nil, &apiError{status: http.StatusUnauthorized, code: spool.CodeUnauthorized,
			msg: "the Authorization header must use the Bearer scheme: \"Authorization: Bearer <secret>\""}
	}
	p, err := s.keys.Authenticate(r.Context(), strings.TrimSpace(secret))
	if errors.Is(err, spool.ErrUnauthorized) {
		s.failures.Fail(addr)
		s.log.Info("authentication failed", "remote_addr", r.RemoteAddr, "path", r.URL.Path)
		return nil, &apiError{status: http.StatusUnauthorized, code: spool.CodeUnauthorized, msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// authenticateSession authenticates a request by its dashboard session
// cookie (session.go): the key it holds, and the CSRF token for a request
// that changes anything.
func (s *Server) authenticateSession(r *http.Request, addr, secret string) (*auth.Principal, error) {
	p, err := s.keys.Authenticate(r.Context(), secret)
	if errors.Is(err, spool.ErrUnauthorized) {
		s.failures.Fail(addr)
		return nil, &apiError{status: http.StatusUnauthorized, code: spool.CodeUnauthorized,
			msg: "the dashboard session's key is no longer valid (revoked or expired): sign in again"}
	}
	if err != nil {
		return nil, err
	}
	if err := checkCSRF(r); err != nil {
		return nil, err
	}
	return p, nil
}

// certKeyID returns the key a verified client certificate names (mutual
// TLS): its subject's common name is "spool-key:<id>". The server's
// --tls-client-ca signed it, so the name is the operator's word.
func certKeyID(r *http.Request) (string, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return "", false
	}
	id, ok := strings.CutPrefix(r.TLS.PeerCertificates[0].Subject.CommonName, "spool-key:")
	return id, ok && auth.ValidID(id)
}

// clientAddr is the address failures are counted by: the client's IP.
func clientAddr(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// guard refuses what no endpoint takes, before routing: bodies that are not
// JSON (415), cross-site requests from browsers (403), and, while the
// server runs without keys, Host headers of names it does not serve (a
// DNS-rebinding page). It returns false after answering.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	unsafe := r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions
	if unsafe {
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			s.writeError(w, r, forbidden("cross-site requests are refused: a web page may not drive Spool"))
			return false
		}
		if o := r.Header.Get("Origin"); o != "" && !s.sameOrigin(o, r.Host) {
			s.writeError(w, r, forbidden("requests from origin %q are refused: a web page may not drive Spool", truncate(o, 80)))
			return false
		}
		if hasBody(r) {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				s.writeError(w, r, &apiError{status: http.StatusUnsupportedMediaType, code: spool.CodeUnsupportedMediaType,
					msg: "request bodies must be JSON: send \"Content-Type: application/json\" (curl: --json)"})
				return false
			}
		}
	}
	if !s.hostAllowed(r.Host) {
		required, err := s.keys.Required(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return false
		}
		if !required {
			s.writeError(w, r, forbidden("host %q is not one this server serves; while it runs without API keys it answers only to its own addresses and names (spool serve --allowed-host)", truncate(r.Host, 80)))
			return false
		}
	}
	return true
}

// hasBody reports whether a request carries a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// hostAllowed reports whether a Host header names this server: an IP
// address (a page cannot rebind a literal address), localhost, the listen
// address's host, or a name of Config.AllowedHosts.
func (s *Server) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "" {
		return true // no Host header: not a browser (they always send one)
	}
	if net.ParseIP(h) != nil || h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	return slices.Contains(s.hosts, h)
}

// sameOrigin reports whether an Origin header is the server's own (same
// host and port as the request's Host, or an allowed host).
func (s *Server) sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// allowedHosts lists the names (lower case) the Host header may carry
// besides addresses and localhost.
func allowedHosts(cfg Config) []string {
	var out []string
	add := func(h string) {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	if h, _, err := net.SplitHostPort(cfg.Addr); err == nil {
		add(h)
	}
	for _, h := range cfg.AllowedHosts {
		add(h)
	}
	return out
}

// isLoopback reports whether a listener accepts only loopback connections.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.Network() == "unix"
	}
	return ta.IP.IsLoopback()
}

// retryAfterHeader sets Retry-After in whole seconds.
func retryAfterHeader(w http.ResponseWriter, secs int) {
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// redact returns body without payloads and results, for keys that may not
// see them (a viewer without can_view_payloads). It copies what it
// changes: the answer's values may be shared.
func redact(body any) any {
	job := func(j *spool.Job) *spool.Job {
		if j == nil {
			return nil
		}
		c := *j
		c.Payload, c.Result = nil, nil
		return &c
	}
	jobs := func(js []*spool.Job) []*spool.Job {
		out := make([]*spool.Job, len(js))
		for i, j := range js {
			out[i] = job(j)
		}
		return out
	}
	sched := func(sc *spool.Schedule) *spool.Schedule {
		if sc == nil {
			return nil
		}
		c := *sc
		c.Job.Payload = nil
		return &c
	}
	switch b := body.(type) {
	case *spool.Job:
		return job(b)
	case *spool.JobsResponse:
		c := *b
		c.Jobs = jobs(b.Jobs)
		return &c
	case *spool.JobList:
		c := *b
		c.Jobs = jobs(b.Jobs)
		return &c
	case *spool.Schedule:
		return sched(b)
	case *spool.SchedulesResponse:
		c := &spool.SchedulesResponse{Schedules: make([]*spool.Schedule, len(b.Schedules))}
		for i, sc := range b.Schedules {
			c.Schedules[i] = sched(sc)
		}
		return c
	}
	return body
}
