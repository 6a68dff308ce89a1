// Package server is Spool's HTTP server: the API v1, health and readiness,
// metrics and the OpenAPI document. It decodes, validates, calls the engine
// and maps errors; queue rules live in the engine. Go programs can embed the
// broker in-process with New.
package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/engine"
)

// Config configures a Server. Zero fields take defaults.
type Config struct {
	// Addr is the listen address for ListenAndServe (default 127.0.0.1:7077).
	Addr string
	// DataDir is the embedded store's directory (default ./spool-data).
	DataDir string
	// Limits bound request sizes and counts (default spool.DefaultLimits).
	Limits spool.Limits
	// Defaults are queue defaults (default engine.DefaultDefaults).
	Defaults engine.Defaults
	// Logger receives the server's logs (default: discard).
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown (default 30s).
	ShutdownTimeout time.Duration
	// Clock overrides the wall clock (tests).
	Clock engine.Clock
}

// Server is a running Spool broker: store, engine and HTTP handler.
type Server struct{}

// New opens the store in cfg.DataDir, starts the engine, and returns a
// Server ready to serve. Close it to release the store.
func New(cfg Config) (*Server, error) { panic("not implemented") }

// Handler returns the HTTP handler of the whole API.
func (s *Server) Handler() http.Handler { panic("not implemented") }

// Engine returns the server's engine (for in-process use and tests).
func (s *Server) Engine() *engine.Engine { panic("not implemented") }

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully:
// stops accepting, ends long-polls, finishes in-flight requests within
// ShutdownTimeout. It does not close the store; Close does.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error { panic("not implemented") }

// ListenAndServe listens on cfg.Addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context) error { panic("not implemented") }

// Close stops the engine and closes the store. It is idempotent.
func (s *Server) Close() error { panic("not implemented") }
