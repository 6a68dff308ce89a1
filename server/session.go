package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

// Dashboard sessions. A browser cannot send an Authorization header with
// page loads, so the dashboard signs in once: POST /v1/session with a key's
// secret checks it and answers with two cookies, both HttpOnly, SameSite
// Strict, Secure over TLS:
//
//   - spool_session holds the secret; a request without an Authorization
//     header is authenticated by it exactly as by "Bearer <secret>" (a
//     revoked or expired key ends the session at once);
//   - spool_csrf holds a random token that the dashboard's pages carry in a
//     <meta> tag; a request authenticated by the cookie that changes
//     anything (not GET or HEAD) must repeat it in the X-Spool-CSRF header.
//
// With the guard's refusal of cross-site requests and SameSite=Strict, a
// page of another site can neither send the cookie nor read the token.
// DELETE /v1/session signs out (clears both).

const (
	sessionCookie = "spool_session"
	csrfCookie    = "spool_csrf"
	// CSRFHeader carries the CSRF token of a cookie session.
	CSRFHeader = "X-Spool-CSRF"
	// sessionTTL is how long the browser keeps the cookies.
	sessionTTL = 12 * time.Hour
)

// SessionRequest is the body of POST /v1/session.
type SessionRequest struct {
	Key string `json:"key"`
}

// Validate checks the request.
func (r *SessionRequest) Validate() error {
	if strings.TrimSpace(r.Key) == "" {
		return spool.Invalidf("key is required: the secret of an API key (shown once when the key was made)")
	}
	return nil
}

// SessionResponse answers POST /v1/session: who the session runs as.
type SessionResponse struct {
	KeyID string   `json:"key_id,omitempty"`
	Name  string   `json:"name,omitempty"`
	Roles []string `json:"roles"`
	Open  bool     `json:"open,omitempty"`
}

// createSession: POST /v1/session {"key":"..."} → the session cookies.
func (s *Server) createSession(ctx context.Context, c *call, req *SessionRequest) (int, *SessionResponse, error) {
	addr := clientAddr(c.r.RemoteAddr)
	if wait, blocked := s.failures.Blocked(addr); blocked {
		secs := int((wait + time.Second - 1) / time.Second)
		return 0, nil, &apiError{status: http.StatusTooManyRequests, code: spool.CodeTooManyAttempts, retryAfter: secs,
			msg: "too many failed authentications from this address; retry later with a valid key"}
	}
	p, err := s.keys.Authenticate(ctx, strings.TrimSpace(req.Key))
	if errors.Is(err, spool.ErrUnauthorized) {
		s.failures.Fail(addr)
		s.log.Info("dashboard sign-in failed", "remote_addr", c.r.RemoteAddr)
		return 0, nil, &apiError{status: http.StatusUnauthorized, code: spool.CodeUnauthorized, msg: err.Error()}
	}
	if err != nil {
		return 0, nil, err
	}
	secure := c.r.TLS != nil
	http.SetCookie(c.w, &http.Cookie{Name: sessionCookie, Value: strings.TrimSpace(req.Key), Path: "/",
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(c.w, &http.Cookie{Name: csrfCookie, Value: newCSRFToken(), Path: "/",
		MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	return http.StatusOK, sessionOf(p), nil
}

// deleteSession: DELETE /v1/session clears the cookies.
func (s *Server) deleteSession(_ context.Context, c *call, _ *noBody) (int, *SessionResponse, error) {
	for _, name := range []string{sessionCookie, csrfCookie} {
		http.SetCookie(c.w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			Secure: c.r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	return http.StatusOK, &SessionResponse{Roles: []string{}}, nil
}

func sessionOf(p *auth.Principal) *SessionResponse {
	out := &SessionResponse{KeyID: p.KeyID, Name: p.Name, Roles: []string{}, Open: p.Open}
	for _, r := range p.Roles {
		out.Roles = append(out.Roles, string(r))
	}
	return out
}

func newCSRFToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// sessionSecret returns the secret of the request's session cookie, if any.
func sessionSecret(r *http.Request) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, true
}

// csrfToken is the CSRF token of the request's session ("" without one):
// what the dashboard puts in its pages.
func csrfToken(r *http.Request) string {
	if _, ok := sessionSecret(r); !ok {
		return ""
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// checkCSRF refuses a request authenticated by the session cookie that
// changes something without the session's CSRF token in CSRFHeader.
func checkCSRF(r *http.Request) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return nil
	}
	want := csrfToken(r)
	got := r.Header.Get(CSRFHeader)
	if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return forbidden("a request signed in by the dashboard's cookie must carry its CSRF token in the %s header", CSRFHeader)
	}
	return nil
}
