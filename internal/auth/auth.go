// Package auth is Spool's access control: roles, the permissions they
// grant, queue and topic name patterns (scopes), API key secrets, and the
// principal a request runs as. It decides nothing about HTTP: the server's
// route table names the permission of each endpoint and asks a Principal.
package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Role is a named set of permissions. A key holds one or more roles.
type Role string

// Roles.
const (
	// RoleAdmin may do everything: keys, queue config, schedules, topics,
	// purge, the audit log.
	RoleAdmin Role = "admin"
	// RoleProducer enqueues and publishes, reads the status of the jobs it
	// may see and cancels them.
	RoleProducer Role = "producer"
	// RoleWorker leases jobs and reports on them (heartbeat, complete,
	// fail, release, acks).
	RoleWorker Role = "worker"
	// RoleViewer reads queues, jobs, topics, schedules, events and
	// metrics; payloads and results stay hidden unless the key allows
	// them (can_view_payloads).
	RoleViewer Role = "viewer"
)

// Roles lists every role, in the order the documentation gives them.
var Roles = []Role{RoleAdmin, RoleProducer, RoleWorker, RoleViewer}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.TrimSpace(s))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q; roles are admin, producer, worker and viewer", s)
}

// Permission is what an endpoint needs. Every route of the server declares
// one (the zero value is refused when the route table is built).
type Permission string

// Permissions.
const (
	// Public endpoints need no key: health, readiness, the OpenAPI file.
	Public Permission = "public"
	// Enqueue: put jobs into a queue (producer).
	Enqueue Permission = "enqueue"
	// Publish: publish messages to a topic (producer); the key must also
	// reach every subscribed queue.
	Publish Permission = "publish"
	// Read: read a job's status (and wait on it), its parents, the event
	// stream (producer, viewer).
	Read Permission = "read"
	// Cancel: cancel a job (producer).
	Cancel Permission = "cancel"
	// Work: lease jobs and report on them (worker).
	Work Permission = "work"
	// View: list and inspect queues, jobs, topics, schedules; metrics
	// (viewer).
	View Permission = "view"
	// Admin: change configuration, retry dead jobs, manage keys, read the
	// audit log (admin only).
	Admin Permission = "admin"
)

// Permissions lists every permission but Public.
var Permissions = []Permission{Enqueue, Publish, Read, Cancel, Work, View, Admin}

// Valid reports whether p is a known permission (Public included).
func (p Permission) Valid() bool { return p == Public || slices.Contains(Permissions, p) }

// grants is the one table from roles to permissions.
var grants = map[Role][]Permission{
	RoleAdmin:    Permissions,
	RoleProducer: {Enqueue, Publish, Read, Cancel},
	RoleWorker:   {Work},
	RoleViewer:   {Read, View},
}

// Grants reports whether role r grants permission p.
func Grants(r Role, p Permission) bool {
	return p == Public || slices.Contains(grants[r], p)
}

// Principal is who a request runs as: a key, or nobody while the server
// runs open (no key stored, loopback only).
type Principal struct {
	// KeyID is the key's public id; empty when Open.
	KeyID string
	// Name is the key's name.
	Name string
	// Roles are the key's roles.
	Roles []Role
	// Scopes are queue and topic name patterns; empty means every name.
	Scopes []string
	// CanViewPayloads lets a viewer see payloads and results.
	CanViewPayloads bool
	// Open is true when no key is needed: the principal may do anything.
	Open bool
}

// OpenPrincipal is the principal of requests to a server without keys.
var OpenPrincipal = &Principal{Open: true}

// Can reports whether the principal has permission p.
func (p *Principal) Can(perm Permission) bool {
	if perm == Public || p.Open {
		return true
	}
	for _, r := range p.Roles {
		if Grants(r, perm) {
			return true
		}
	}
	return false
}

// IsAdmin reports whether the principal holds the admin role (or the
// server runs open).
func (p *Principal) IsAdmin() bool { return p.Open || slices.Contains(p.Roles, RoleAdmin) }

// Reaches reports whether the principal's scopes cover a queue or topic
// name.
func (p *Principal) Reaches(name string) bool {
	if p.Open || len(p.Scopes) == 0 {
		return true
	}
	for _, pat := range p.Scopes {
		if Match(pat, name) {
			return true
		}
	}
	return false
}

// Scoped reports whether the principal is limited to some names.
func (p *Principal) Scoped() bool { return !p.Open && len(p.Scopes) > 0 }

// SeesPayloads reports whether payloads and results are shown to the
// principal: any role but viewer sees them; a viewer-only key needs
// CanViewPayloads.
func (p *Principal) SeesPayloads() bool {
	if p.Open || p.CanViewPayloads {
		return true
	}
	for _, r := range p.Roles {
		if r != RoleViewer {
			return true
		}
	}
	return false
}

// Match reports whether name matches pattern: '*' stands for any run of
// characters (none included), every other character for itself.
// "reports.*" matches "reports.daily" (not "reports"); "*" matches all.
func Match(pattern, name string) bool {
	// The classic wildcard walk: on a mismatch, go back to the last '*'
	// and let it take one more character. At most len(pattern)*len(name)
	// steps, whatever the pattern.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ValidatePattern checks a scope pattern: the characters of queue names
// ([a-z0-9._-]) and '*', 1 to 128 of them.
func ValidatePattern(p string) error {
	if p == "" || len(p) > 128 {
		return fmt.Errorf("scope pattern %q must have 1 to 128 characters", p)
	}
	for _, c := range p {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == '*':
		default:
			return fmt.Errorf("scope pattern %q may only hold a-z, 0-9, '.', '_', '-' and '*'", p)
		}
	}
	return nil
}
