package sqs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// Defaults of Config.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "000000000000"
	// DefaultAddr is the port local SQS emulators use.
	DefaultAddr = "127.0.0.1:9324"
)

// Content types of the two protocols.
const (
	jsonContentType = "application/x-amz-json-1.0"
	formContentType = "application/x-www-form-urlencoded"
	xmlContentType  = "text/xml"
	targetPrefix    = "AmazonSQS."
	xmlNamespace    = "http://queue.amazonaws.com/doc/2012-11-05/"
	maxRequestTime  = 30 * time.Second
	maxLongPollWait = 20 * time.Second
)

// Principal is who sent a request, as an Authenticator found it.
type Principal struct {
	// KeyID is the access key id the request was signed with ("" in open
	// mode).
	KeyID string
	// Allow reports whether the principal may do action on the Spool
	// queue (nil: everything is allowed).
	Allow func(action, queue string) bool
}

// Authenticator checks a request's credentials. body is the request body,
// read whole. A nil Authenticator is open mode: any credentials, or none,
// are accepted, as local SQS emulators do.
type Authenticator interface {
	Authenticate(r *http.Request, body []byte) (*Principal, error)
}

// Config configures a Handler.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	// Limits bound request bodies and payloads (default spool.DefaultLimits).
	Limits spool.Limits
	// Region and AccountID appear in queue ARNs (defaults DefaultRegion
	// and DefaultAccountID; a signed request's region wins for Region).
	Region    string
	AccountID string
	// Auth checks credentials; nil is open mode.
	Auth Authenticator
	// HostAllowed, when set, refuses requests in open mode whose Host it
	// does not accept (a page that rebinds a name of its own to this
	// machine).
	HostAllowed func(host string) bool
}

// Handler serves the Amazon SQS API over a Spool engine.
type Handler struct {
	cfg Config
	e   *engine.Engine
	log *slog.Logger

	cacheMu sync.Mutex
	cache   map[string]cachedQueue // by Spool queue name
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Engine == nil {
		return nil, errors.New("sqs: Config.Engine is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	return &Handler{cfg: cfg, e: cfg.Engine, log: cfg.Logger, cache: make(map[string]cachedQueue)}, nil
}

// call is one request being served.
type call struct {
	r      *http.Request
	json   bool
	action string
	id     string
	who    *Principal
	// base is the queue URL prefix: scheme://host/account/.
	base string
	// pathQueue is the queue named by the request path (query protocol).
	pathQueue string
}

// ServeHTTP serves one SQS request in either protocol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{r: r, id: uuid.NewString()}
	w.Header().Set("x-amzn-RequestId", c.id)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	target := r.Header.Get("X-Amz-Target")
	c.json = target != "" || ct == jsonContentType
	if r.Header.Get("Origin") != "" {
		// A browser sends Origin with a cross-site request: no web page
		// may drive Spool through this listener.
		h.fail(w, c, newError(http.StatusForbidden, "AccessDenied", "AccessDenied", "Requests from web pages (with an Origin header) are refused."))
		return
	}
	if r.Method != http.MethodPost && !(r.Method == http.MethodGet && !c.json) {
		h.fail(w, c, newError(http.StatusMethodNotAllowed, "InvalidAction", "InvalidAction", "Use POST (or GET for the query protocol)."))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.Limits.MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			h.fail(w, c, newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "RequestEntityTooLarge", "The request body passes %d bytes.", h.cfg.Limits.MaxBodyBytes))
			return
		}
		h.fail(w, c, newError(http.StatusBadRequest, "InvalidRequest", "InvalidRequest", "The request body could not be read."))
		return
	}
	var form url.Values
	if c.json {
		if ct != jsonContentType {
			h.fail(w, c, newError(http.StatusBadRequest, "InvalidRequest", "InvalidRequest", "Content-Type must be %s with X-Amz-Target.", jsonContentType))
			return
		}
		a, ok := strings.CutPrefix(target, targetPrefix)
		if !ok {
			h.fail(w, c, unknownAction(target, true))
			return
		}
		c.action = a
	} else {
		form = r.URL.Query()
		if r.Method == http.MethodPost {
			if ct != formContentType {
				h.fail(w, c, newError(http.StatusBadRequest, "InvalidRequest", "InvalidRequest", "Content-Type must be %s (query protocol) or %s with X-Amz-Target (JSON protocol).", formContentType, jsonContentType))
				return
			}
			f, err := url.ParseQuery(string(body))
			if err != nil {
				h.fail(w, c, newError(http.StatusBadRequest, "MalformedQueryString", "MalformedQueryString", "The form body could not be parsed."))
				return
			}
			for k, v := range f {
				form[k] = append(form[k], v...)
			}
		}
		c.action = form.Get("Action")
		if c.action == "" {
			h.fail(w, c, missingParameter("Action"))
			return
		}
		if r.Method == http.MethodGet && !readOnly[c.action] {
			// A page can make a browser send a GET (an image, a link)
			// without any header to tell it: only reads are served so.
			h.fail(w, c, newError(http.StatusMethodNotAllowed, "InvalidAction", "InvalidAction", "%s changes state: send it as a POST.", clip(c.action, 100)))
			return
		}
	}
	if h.cfg.Auth != nil {
		who, err := h.cfg.Auth.Authenticate(r, body)
		if err != nil {
			h.fail(w, c, fromEngine(err))
			return
		}
		c.who = who
	}
	if c.who == nil && h.cfg.HostAllowed != nil && !h.cfg.HostAllowed(r.Host) {
		// Open (no key needed): only the names the server serves, so
		// that a page rebinding a name of its own to this machine cannot
		// use it.
		h.fail(w, c, newError(http.StatusForbidden, "AccessDenied", "AccessDenied", "The Host %q is not one this server serves (see --allowed-host).", clip(r.Host, 100)))
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c.base = scheme + "://" + r.Host + "/" + h.cfg.AccountID + "/"
	if p := strings.Trim(r.URL.Path, "/"); p != "" {
		parts := strings.Split(p, "/")
		c.pathQueue = parts[len(parts)-1]
	}
	a, ok := actions[c.action]
	if !ok {
		h.fail(w, c, unknownAction(c.action, c.json))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxRequestTime+maxLongPollWait)
	defer cancel()
	var out output
	if c.json {
		out, err = a.runJSON(ctx, h, c, body)
	} else {
		out, err = a.runQuery(ctx, h, c, form)
	}
	if err != nil {
		ae := fromEngine(err)
		if ae.Status >= 500 && ae.Code == "InternalError" {
			h.log.Error("sqs request failed", "action", c.action, "request_id", c.id, "error", err)
		}
		h.fail(w, c, ae)
		return
	}
	h.ok(w, c, out)
}

// ok writes a successful answer.
func (h *Handler) ok(w http.ResponseWriter, c *call, out output) {
	if c.json {
		b, err := json.Marshal(out)
		if err != nil {
			h.log.Error("sqs: encoding an answer", "action", c.action, "error", err)
			h.fail(w, c, fromEngine(err))
			return
		}
		w.Header().Set("Content-Type", jsonContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		return
	}
	var x xw
	x.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.open(c.action+"Response", `xmlns="`+xmlNamespace+`"`)
	if !isEmpty(out) {
		x.open(c.action + "Result")
		out.writeXML(&x)
		x.close(c.action + "Result")
	}
	x.open("ResponseMetadata")
	x.elem("RequestId", c.id)
	x.close("ResponseMetadata")
	x.close(c.action + "Response")
	w.Header().Set("Content-Type", xmlContentType)
	w.Header().Set("Content-Length", strconv.Itoa(x.b.Len()))
	_, _ = w.Write(x.b.Bytes())
}

// fail writes an error answer in the request's protocol.
func (h *Handler) fail(w http.ResponseWriter, c *call, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	fault := "Sender"
	if !e.Sender {
		fault = "Receiver"
	}
	if c.json {
		w.Header().Set("x-amzn-query-error", e.Code+";"+fault)
		w.Header().Set("Content-Type", jsonContentType)
		b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + e.Type, "message": e.Msg})
		w.WriteHeader(e.Status)
		_, _ = w.Write(b)
		return
	}
	var x xw
	x.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.open("ErrorResponse", `xmlns="`+xmlNamespace+`"`)
	x.open("Error")
	x.elem("Type", fault)
	x.elem("Code", e.Code)
	x.elem("Message", e.Msg)
	x.b.WriteString("<Detail/>")
	x.close("Error")
	x.elem("RequestId", c.id)
	x.close("ErrorResponse")
	w.Header().Set("Content-Type", xmlContentType)
	w.WriteHeader(e.Status)
	_, _ = w.Write(x.b.Bytes())
}

// readOnly are the actions a GET may carry.
var readOnly = map[string]bool{"ListQueues": true, "GetQueueUrl": true, "GetQueueAttributes": true, "ListQueueTags": true, "ListDeadLetterSourceQueues": true}

// output is an action's answer: JSON through encoding/json, XML through
// writeXML (the content of the <ActionResult> element).
type output interface {
	writeXML(x *xw)
}

// empty is the answer of actions that return nothing.
type empty struct{}

func (empty) writeXML(*xw) {}

func isEmpty(o output) bool {
	_, ok := o.(empty)
	return ok
}

// action is one SQS action in both protocols.
type action struct {
	runJSON  func(ctx context.Context, h *Handler, c *call, body []byte) (output, error)
	runQuery func(ctx context.Context, h *Handler, c *call, f url.Values) (output, error)
}

// act builds an action from its typed input, how the query protocol
// fills that input, and what it does.
func act[I any, O output](fromQuery func(f form, in *I) error, run func(ctx context.Context, h *Handler, c *call, in *I) (O, error)) action {
	return action{
		runJSON: func(ctx context.Context, h *Handler, c *call, body []byte) (output, error) {
			in := new(I)
			if len(bytes.TrimSpace(body)) > 0 {
				if err := json.Unmarshal(body, in); err != nil {
					return nil, newError(http.StatusBadRequest, "SerializationException", "SerializationException", "The request body is not valid JSON for %s: %s", c.action, jsonProblem(err))
				}
			}
			return run(ctx, h, c, in)
		},
		runQuery: func(ctx context.Context, h *Handler, c *call, f url.Values) (output, error) {
			in := new(I)
			if err := fromQuery(form(f), in); err != nil {
				return nil, err
			}
			return run(ctx, h, c, in)
		},
	}
}

// jsonProblem describes a JSON decoding error without echoing input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s must be %s", te.Field, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}
