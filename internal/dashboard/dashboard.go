// Package dashboard is Spool's web dashboard: server-rendered pages
// (html/template) with one small script of our own, every asset embedded
// in the binary, served at / by the same server as the API. Pages read
// through the same engine calls as the API, so they show nothing the API
// cannot; actions (pause, retry, cancel, delete, bulk actions) are calls to
// the public HTTP API made by the page's script. No asset comes from
// elsewhere, and a strict Content-Security-Policy says so to the browser.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/engine"
)

//go:embed templates/*.html static/*
var assets embed.FS

// ContentSecurityPolicy is sent with every page: nothing but this server's
// own scripts, styles, images and connections; no inline script or style,
// no framing, forms post only here.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Config configures a Dashboard.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	// Clock tells the time shown as "now" (ages, "in 5s"); default the
	// real clock.
	Clock func() time.Time
	// Principal returns who a request runs as (default: the open
	// principal): pages show only the queues and topics it reaches, hide
	// payloads from it unless it may see them, and offer only the actions
	// it may take.
	Principal func(r *http.Request) *auth.Principal
	// CSRFToken returns the CSRF token of the request's session ("" for
	// none), which pages carry for their script to send back.
	CSRFToken func(r *http.Request) string
}

// Dashboard serves the pages.
type Dashboard struct {
	e     *engine.Engine
	log   *slog.Logger
	now   func() time.Time
	who   func(r *http.Request) *auth.Principal
	csrf  func(r *http.Request) string
	pages map[string]*template.Template
}

// Page is one route of the dashboard.
type Page struct {
	// Pattern is the path pattern (http.ServeMux syntax, GET).
	Pattern string
	// Public marks the pages anyone may load: the embedded assets and the
	// sign-in page (no data in them).
	Public  bool
	Handler http.Handler
}

// New parses the templates.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Engine == nil {
		return nil, errors.New("dashboard: Config.Engine is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Principal == nil {
		cfg.Principal = func(*http.Request) *auth.Principal { return auth.OpenPrincipal }
	}
	if cfg.CSRFToken == nil {
		cfg.CSRFToken = func(*http.Request) string { return "" }
	}
	d := &Dashboard{e: cfg.Engine, log: cfg.Logger, now: cfg.Clock, who: cfg.Principal, csrf: cfg.CSRFToken,
		pages: map[string]*template.Template{}}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(d.funcs()).ParseFS(assets, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parsing %s: %w", n, err)
		}
		d.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return d, nil
}

// Pages lists the dashboard's routes.
func (d *Dashboard) Pages() []Page {
	return []Page{
		{Pattern: "/{$}", Handler: d.page(d.overview)},
		{Pattern: "/queues/{queue}", Handler: d.page(d.queue)},
		{Pattern: "/jobs", Handler: d.page(d.jobs)},
		{Pattern: "/jobs/{id}", Handler: d.page(d.job)},
		{Pattern: "/dead", Handler: d.page(d.dead)},
		{Pattern: "/schedules", Handler: d.page(d.schedules)},
		{Pattern: "/topics", Handler: d.page(d.topics)},
		{Pattern: "/webhooks", Handler: d.page(d.webhooks)},
		{Pattern: "/workers", Handler: d.page(d.workers)},
		{Pattern: "/login", Public: true, Handler: d.page(d.login)},
		{Pattern: "/static/{file}", Public: true, Handler: http.HandlerFunc(d.static)},
	}
}

// view is what a page handler returns: the template and its data.
type view struct {
	page  string
	title string
	data  any
}

// layoutData is what every page's template receives.
type layoutData struct {
	Title string
	Nav   string
	Now   time.Time
	Data  any
	// Who is the signed-in key (nil while the server is open).
	Who *auth.Principal
	// CSRF is the session's CSRF token, for the script.
	CSRF string
	// CanAdmin and CanCancel say which actions to offer.
	CanAdmin, CanCancel bool
}

// pageTimeout bounds the work of one page.
const pageTimeout = 10 * time.Second

// page wraps a page handler: security headers, a bounded context, the
// layout, and an error page for errors.
func (d *Dashboard) page(fn func(ctx context.Context, r *http.Request) (*view, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
		defer cancel()
		v, err := fn(ctx, r)
		if err != nil {
			d.errorPage(w, r, err)
			return
		}
		d.render(w, r, http.StatusOK, v)
	})
}

func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, v *view) {
	t := d.pages[v.page]
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	p := d.who(r)
	ld := layoutData{Title: v.title, Nav: v.page, Now: d.now(), Data: v.data, CSRF: d.csrf(r),
		CanAdmin: p.Can(auth.Admin), CanCancel: p.Can(auth.Cancel)}
	if !p.Open {
		ld.Who = p
	}
	if err := t.ExecuteTemplate(&buf, "layout.html", ld); err != nil {
		d.log.Error("rendering a dashboard page failed", "page", v.page, "error", err)
		http.Error(w, "the page could not be drawn; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage shows an error as a page, with the status the API would give.
func (d *Dashboard) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	msg := "something went wrong on the server; see its log"
	switch {
	case errors.Is(err, spool.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, spool.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, spool.ErrForbidden):
		status, msg = http.StatusForbidden, err.Error()
	case errors.Is(err, spool.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusServiceUnavailable, "the store is not answering; try again shortly"
	default:
		d.log.Error("dashboard page failed", "path", r.URL.Path, "error", err)
	}
	d.render(w, r, status, &view{page: "error", title: http.StatusText(status), data: struct {
		Status  int
		Message string
	}{status, msg}})
}

// static serves the embedded assets.
func (d *Dashboard) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := assets.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		setHeaders(w.Header())
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	setHeaders(w.Header())
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
