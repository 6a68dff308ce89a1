package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

// cookiesOf returns the name=value pairs of an answer's Set-Cookie headers.
func cookiesOf(h http.Header) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: h}).Cookies() {
		out[c.Name] = c
	}
	return out
}

// The dashboard's session: a key's secret buys HttpOnly, SameSite=Strict
// cookies; the cookie authenticates like the key; a change needs the CSRF
// token; a wrong key buys nothing; signing out clears the cookies; a page
// without a session sends a browser to the sign-in page.
func TestDashboardSession(t *testing.T) {
	t.Parallel()
	a := newAuthServer(t, Config{AuthFailures: 1000})
	admin := a.key(auth.CreateParams{Roles: []string{"admin"}})
	viewer := a.key(auth.CreateParams{Roles: []string{"viewer"}, Queues: []string{"mail*"}})
	require.Equal(t, http.StatusAccepted, a.send("POST", "/v1/queues/mail/jobs", admin, spool.EnqueueRequest{Type: "t", Payload: []byte(`{"secret":"payload-marker-s3"}`)}).code)
	require.Equal(t, http.StatusAccepted, a.send("POST", "/v1/queues/other/jobs", admin, spool.EnqueueRequest{Type: "t"}).code)

	// No session: a browser is sent to sign in; a program gets 401.
	req, err := http.NewRequest("GET", a.url+"/queues/mail", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login?next=%2Fqueues%2Fmail", res.Header.Get("Location"))
	require.Equal(t, http.StatusUnauthorized, a.send("GET", "/queues/mail", "", nil).code)
	require.Equal(t, http.StatusOK, a.send("GET", "/login", "", nil).code, "the sign-in page is public")

	// A wrong key and a missing one buy no cookie.
	r := a.send("POST", "/v1/session", "", map[string]string{"key": "nope"})
	require.Equal(t, http.StatusUnauthorized, r.code)
	require.Empty(t, cookiesOf(r.h))
	require.Equal(t, http.StatusBadRequest, a.send("POST", "/v1/session", "", map[string]string{}).code)

	r = a.send("POST", "/v1/session", "", map[string]string{"key": admin})
	require.Equal(t, http.StatusOK, r.code, "%s", r.body)
	cs := cookiesOf(r.h)
	sess, csrf := cs["spool_session"], cs["spool_csrf"]
	require.NotNil(t, sess)
	require.NotNil(t, csrf)
	for _, c := range []*http.Cookie{sess, csrf} {
		require.True(t, c.HttpOnly, c.Name)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite, c.Name)
		require.Equal(t, "/", c.Path)
	}
	cookie := "spool_session=" + sess.Value + "; spool_csrf=" + csrf.Value

	// The cookie authenticates pages and reads; the page carries the token.
	r = a.send("GET", "/", "", nil, "Cookie", cookie)
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, string(r.body), `<meta name="spool-csrf" content="`+csrf.Value+`">`)
	require.Contains(t, string(r.body), `id="signout"`)
	require.Equal(t, http.StatusOK, a.send("GET", "/v1/queues/mail", "", nil, "Cookie", cookie).code)

	// A change needs the token, and the right one.
	pause := map[string]any{"paused": true}
	r = a.send("PATCH", "/v1/queues/mail", "", pause, "Cookie", cookie)
	require.Equal(t, http.StatusForbidden, r.code)
	require.Contains(t, string(r.body), "X-Spool-CSRF")
	require.Equal(t, http.StatusForbidden, a.send("PATCH", "/v1/queues/mail", "", pause, "Cookie", cookie, "X-Spool-CSRF", "forged").code)
	r = a.send("GET", "/v1/queues/mail", admin, nil)
	require.NotContains(t, string(r.body), `"paused":true`, "a refused change changes nothing")
	require.Equal(t, http.StatusOK, a.send("PATCH", "/v1/queues/mail", "", pause, "Cookie", cookie, "X-Spool-CSRF", csrf.Value).code)

	// Signing out clears both cookies.
	r = a.send("DELETE", "/v1/session", "", nil, "Cookie", cookie)
	require.Equal(t, http.StatusOK, r.code)
	for _, name := range []string{"spool_session", "spool_csrf"} {
		c := cookiesOf(r.h)[name]
		require.NotNil(t, c, name)
		require.Negative(t, c.MaxAge, name)
	}

	// A scoped viewer sees only its queues, no payloads, no actions.
	r = a.send("POST", "/v1/session", "", map[string]string{"key": viewer})
	require.Equal(t, http.StatusOK, r.code)
	cs = cookiesOf(r.h)
	vcookie := "spool_session=" + cs["spool_session"].Value + "; spool_csrf=" + cs["spool_csrf"].Value
	r = a.send("GET", "/", "", nil, "Cookie", vcookie)
	require.Equal(t, http.StatusOK, r.code)
	require.Contains(t, string(r.body), `href="/queues/mail"`)
	require.NotContains(t, string(r.body), `href="/queues/other"`, "out of scope")
	require.Equal(t, http.StatusForbidden, a.send("GET", "/queues/other", "", nil, "Cookie", vcookie).code)
	require.Equal(t, http.StatusForbidden, a.send("GET", "/jobs?queue=other", "", nil, "Cookie", vcookie).code)
	r = a.send("GET", "/queues/mail", "", nil, "Cookie", vcookie)
	require.Equal(t, http.StatusOK, r.code)
	require.NotContains(t, string(r.body), `id="pause"`, "a viewer is offered no action")
	require.NotContains(t, string(r.body), `data-patch=`)
	r = a.send("GET", "/jobs?queue=mail", "", nil, "Cookie", vcookie)
	id := between(string(r.body), `<a href="/jobs/`, `"`)
	require.NotEmpty(t, id)
	r = a.send("GET", "/jobs/"+id, "", nil, "Cookie", vcookie)
	require.Equal(t, http.StatusOK, r.code)
	require.NotContains(t, string(r.body), "payload-marker-s3", "a viewer does not see payloads")
	require.Contains(t, string(r.body), "hidden")
}

func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
