package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// App is the web side of the example: it enqueues report jobs and shows
// their status. It never builds a report itself.
type App struct {
	c     *client.Client
	queue string
	log   *slog.Logger
}

// Status is what GET /reports/{id} answers.
type Status struct {
	ID string `json:"id"`
	// State is queued, running, done or failed.
	State   string          `json:"state"`
	Percent float64         `json:"percent"`
	Message string          `json:"message,omitempty"`
	Attempt int             `json:"attempt"`
	Report  json.RawMessage `json:"report,omitempty"`
	Error   string          `json:"error,omitempty"`
	// StatusURL is where to poll.
	StatusURL string `json:"status_url"`
}

// Handler serves the page and the small JSON API it uses.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("POST /reports", a.create)
	mux.HandleFunc("GET /reports/{id}", a.status)
	return mux
}

func (a *App) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, nil); err != nil {
		a.log.Error("rendering the page", "error", err)
	}
}

// create enqueues a report job and answers at once: 202 Accepted, with
// the status URL in Location and in the body. The request's own id, when
// the page sends one, is the idempotency key: a double submit, or a retry
// after a lost answer, returns the same job.
func (a *App) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ReportRequest
		RequestID string `json:"request_id"`
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form := ct == "application/x-www-form-urlencoded"
	if form {
		in.Kind = r.PostFormValue("kind")
		in.Months, _ = strconv.Atoi(r.PostFormValue("months"))
		in.RequestID = r.PostFormValue("request_id")
	} else {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "the body must be JSON such as {\"kind\":\"sales\",\"months\":6}: " + err.Error()})
			return
		}
	}
	if err := in.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	opts := []client.EnqueueOption{client.MaxAttempts(3), client.JobTimeout(10 * time.Minute), client.Tags("example")}
	if in.RequestID != "" {
		opts = append(opts, client.IdempotencyKey("report-"+in.RequestID))
	}
	// The user is waiting: give the queue a few seconds at most.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	job, err := a.c.Push(ctx, a.queue, JobType, in.ReportRequest, opts...)
	if err != nil {
		a.refuse(w, err)
		return
	}
	statusURL := "/reports/" + job.ID
	w.Header().Set("Location", statusURL)
	a.log.Info("report requested", "job_id", job.ID, "kind", in.Kind, "months", in.Months)
	if form {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		_ = acceptedTmpl.Execute(w, map[string]string{"ID": job.ID, "StatusURL": statusURL})
		return
	}
	writeJSON(w, http.StatusAccepted, Status{ID: job.ID, State: "queued", StatusURL: statusURL})
}

// refuse answers an enqueue that did not go through.
func (a *App) refuse(w http.ResponseWriter, err error) {
	var ce *client.Error
	if errors.Is(err, spool.ErrQueueFull) && errors.As(err, &ce) {
		secs := max(int(ce.RetryAfter.Seconds()), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf("too many reports are being built; try again in %ds", secs)})
		return
	}
	a.log.Error("enqueueing a report", "error", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "reports cannot be requested right now; try again soon"})
}

// status answers the state of a report job.
func (a *App) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	job, err := a.c.Get(r.Context(), id, 0)
	switch {
	case errors.Is(err, spool.ErrNotFound), errors.Is(err, spool.ErrInvalid):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no report " + id})
		return
	case err != nil:
		a.log.Error("reading a report's job", "job_id", id, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "cannot read the report's status right now"})
		return
	}
	if job.Type != JobType {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no report " + id})
		return
	}
	writeJSON(w, http.StatusOK, statusOf(job))
}

func statusOf(j *spool.Job) Status {
	s := Status{ID: j.ID, Attempt: j.Attempt, StatusURL: "/reports/" + j.ID}
	if p := j.Progress; p != nil {
		s.Percent, s.Message = p.Percent, p.Message
	}
	switch j.State {
	case spool.StateActive:
		s.State = "running"
	case spool.StateSucceeded:
		s.State, s.Percent, s.Message, s.Report = "done", 100, "the report is ready", j.Result
	case spool.StateDead, spool.StateCancelled:
		s.State = "failed"
		s.Error = "the report was " + string(j.State)
		if n := len(j.Errors); n > 0 {
			s.Error = j.Errors[n-1].Error
		}
	default: // waiting, scheduled (a retry's backoff), ready
		s.State = "queued"
		if n := len(j.Errors); n > 0 {
			s.Message = fmt.Sprintf("attempt %d failed (%s); retrying", j.Attempt, j.Errors[n-1].Error)
		}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var acceptedTmpl = template.Must(template.New("accepted").Parse(`<!doctype html>
<title>Report requested</title>
<p>Report {{.ID}} requested. <a href="/#{{.ID}}">Follow its progress</a> (or <a href="{{.StatusURL}}">its status as JSON</a>).</p>
`))

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Reports — a Spool example</title>
<style>
 body { font: 16px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
 .bar { height: 1.2rem; background: #eee; border-radius: .3rem; overflow: hidden; }
 .bar > div { height: 100%; width: 0; background: #3a7; transition: width .3s; }
 table { border-collapse: collapse; margin-top: 1rem; } td, th { padding: .2rem .8rem; text-align: right; }
 .error { color: #b00; }
</style>
</head>
<body>
<h1>Reports</h1>
<p>Ask for a report: the server answers <code>202 Accepted</code> at once; a worker builds it in the background.</p>
<form id="ask" method="post" action="/reports">
 <label>Kind <select name="kind"><option>sales</option><option>returns</option></select></label>
 <label>Months <input name="months" type="number" min="1" max="24" value="6"></label>
 <button>Build the report</button>
</form>
<section id="status" hidden>
 <h2>Report <code id="rid"></code></h2>
 <p id="state"></p>
 <div class="bar"><div id="fill"></div></div>
 <p id="message"></p>
 <div id="result"></div>
</section>
<script>
const $ = (id) => document.getElementById(id);
let timer;
async function follow(url) {
  clearTimeout(timer);
  $("status").hidden = false;
  const r = await fetch(url);
  const s = await r.json();
  if (!r.ok) { $("state").textContent = s.error; $("state").className = "error"; return; }
  $("rid").textContent = s.id;
  $("state").textContent = s.state + (s.attempt > 1 ? " (attempt " + s.attempt + ")" : "");
  $("state").className = s.state === "failed" ? "error" : "";
  $("fill").style.width = s.percent + "%";
  $("message").textContent = s.error || s.message || "";
  if (s.state === "done") { show(s.report); return; }
  if (s.state !== "failed") timer = setTimeout(() => follow(url), 500);
}
function show(rep) {
  const rows = rep.rows.map(r => "<tr><td>" + r.month + "</td><td>" + r.amount.toLocaleString() + "</td></tr>").join("");
  $("result").innerHTML = "<table><tr><th>Month</th><th>" + rep.kind + "</th></tr>" + rows +
    "<tr><th>Total</th><th>" + rep.total.toLocaleString() + "</th></tr></table>";
}
$("ask").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("result").innerHTML = "";
  const f = new FormData(ev.target);
  const body = {kind: f.get("kind"), months: Number(f.get("months")), request_id: crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)};
  const r = await fetch("/reports", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const s = await r.json();
  if (r.status !== 202) { $("status").hidden = false; $("state").textContent = s.error; $("state").className = "error"; return; }
  location.hash = s.id;
  follow(s.status_url);
});
if (location.hash.length > 1) follow("/reports/" + location.hash.slice(1));
</script>
</body>
</html>
`))
