// Package servertest lets Spool's own tests reach what a server keeps out
// of its public API: its engine, for maintenance passes and schedule
// firings on demand. Package server registers the accessor.
package servertest

import (
	"github.com/spoolq/spool/internal/engine"
)

var engineOf func(srv any) *engine.Engine

// Register sets the accessor; package server calls it once, at init.
func Register(f func(srv any) *engine.Engine) { engineOf = f }

// Engine returns the engine of a *server.Server.
func Engine(srv any) *engine.Engine { return engineOf(srv) }
