package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/internal/store"
)

// touchEvery is how often last-used times of keys are written;
// auditPurgeEvery how often audit entries past their retention go.
const (
	touchEvery      = 10 * time.Second
	auditPurgeEvery = time.Hour
)

// purgeAudit deletes the audit entries older than the retention, in
// batches.
func (s *Server) purgeAudit(ctx context.Context) {
	before := s.cfg.Clock.Now().Add(-s.cfg.AuditRetention)
	for {
		n, err := s.store.PurgeAudit(ctx, before, 1000)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("purging the audit log", "error", err)
			}
			return
		}
		if n > 0 {
			s.log.Info("audit entries purged", "count", n, "before", before)
		}
		if n < 1000 {
			return
		}
	}
}

// touchLoop writes the keys' last-used times in the background.
type touchLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func startTouchLoop(k *auth.Keyring, log *slog.Logger, purge func(context.Context)) *touchLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &touchLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(touchEvery)
		defer t.Stop()
		p := time.NewTicker(auditPurgeEvery)
		defer p.Stop()
		for {
			select {
			case <-ctx.Done():
				fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := k.FlushUses(fctx); err != nil {
					log.Warn("recording keys' last use", "error", err)
				}
				fcancel()
				return
			case <-t.C:
				if err := k.FlushUses(ctx); err != nil && !errors.Is(err, context.Canceled) {
					log.Warn("recording keys' last use", "error", err)
				}
			case <-p.C:
				purge(ctx)
			}
		}
	}()
	return l
}

// stop ends the loop after a last flush; it is idempotent.
func (l *touchLoop) stop() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		l.cancel()
		<-l.done
	})
}

// Keyring returns the server's keyring: the one way to authenticate a
// bearer secret (Authenticate) or find a key's secret for SigV4 (SigV4),
// for the other surfaces of the server (SQS API, dashboard).
func (s *Server) Keyring() *auth.Keyring { return s.keys }

// checkOpen refuses to serve beyond loopback without any API key (unless
// Config.InsecureOpenOnTrustedNetwork), and says in the log when the
// server runs open.
func (s *Server) checkOpen(ctx context.Context, ln net.Listener) error {
	required, err := s.keys.Required(ctx)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if required {
		s.log.Info("API keys required", "addr", ln.Addr().String())
		return nil
	}
	if !isLoopback(ln.Addr()) {
		if !s.cfg.InsecureOpenOnTrustedNetwork {
			return fmt.Errorf("server: refusing to listen on %s, beyond loopback, without any API key: anyone who reaches the port could use it. "+
				"Create the first admin key, then start again:\n  spool keys create --name admin --role admin --data %s\n"+
				"(or --store URL for PostgreSQL; send it as Authorization: Bearer <secret>, or SPOOL_API_KEY for the CLI). "+
				"To run open on a network you trust whole, pass --insecure-open-on-trusted-network", ln.Addr(), s.cfg.DataDir)
		}
		s.log.Warn("running WITHOUT API keys on a network address: anyone who reaches it may do anything", "addr", ln.Addr().String())
		return nil
	}
	s.log.Info("running open: no API key exists, so requests need none while the server listens on loopback only; create one with `spool keys create`", "addr", ln.Addr().String())
	return nil
}

// keysList: GET /v1/keys.
func (s *Server) keysList(ctx context.Context, _ *call, _ *noBody) (int, *spool.KeysResponse, error) {
	keys, err := s.keys.List(ctx)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, &spool.KeysResponse{Keys: keys}, nil
}

// keysCreate: POST /v1/keys. The answer holds the secret, shown this once.
func (s *Server) keysCreate(ctx context.Context, c *call, req *spool.CreateKeyRequest) (int, *spool.CreatedKey, error) {
	p := auth.CreateParams{Name: req.Name, Roles: req.Roles, Queues: req.Queues, CanViewPayloads: req.CanViewPayloads}
	if req.Expires != nil {
		if req.Expires.D() <= 0 {
			return 0, nil, spool.Invalidf("expires must be a positive duration such as \"720h\"")
		}
		p.Expires = req.Expires.D()
	}
	k, err := s.keys.Create(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	c.w.Header().Set("Cache-Control", "no-store")
	c.auditResource = "key/" + k.ID
	return http.StatusCreated, k, nil
}

// keysRevoke: DELETE /v1/keys/{key}.
func (s *Server) keysRevoke(ctx context.Context, c *call, _ *noBody) (int, *spool.Key, error) {
	k, err := s.keys.Revoke(ctx, c.r.PathValue("key"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, k, nil
}

// auditList: GET /v1/audit?limit=&cursor=, newest first.
func (s *Server) auditList(ctx context.Context, c *call, _ *noBody) (int, *spool.AuditResponse, error) {
	p := store.AuditParams{Limit: 100, Before: c.query.Get("cursor")}
	if v := c.query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, nil, spool.Invalidf("limit must be an integer between 1 and 1000, got %q", truncate(v, 20))
		}
		p.Limit = n
	}
	if p.Before != "" {
		if _, err := parseJobID(p.Before); err != nil {
			return 0, nil, spool.Invalidf("cursor %q is not a cursor of this list", truncate(p.Before, 40))
		}
	}
	entries, next, err := s.store.ListAudit(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	if entries == nil {
		entries = []spool.AuditEntry{}
	}
	return http.StatusOK, &spool.AuditResponse{Entries: entries, NextCursor: next}, nil
}

// audited reports whether a route's successful requests are recorded in
// the audit log: every change that needs the admin permission, and
// cancellations.
func audited(rt route) bool {
	return rt.method != http.MethodGet && (rt.perm == auth.Admin || rt.perm == auth.Cancel)
}

// audit records an admin action that succeeded. A failure to record is
// logged: the action itself is done.
func (s *Server) audit(c *call, rt route) {
	resource := c.auditResource
	if resource == "" {
		resource = c.r.URL.Path
	}
	e := &spool.AuditEntry{
		ID:         uuid.Must(uuid.NewV7()).String(),
		At:         s.cfg.Clock.Now().UTC().Truncate(time.Microsecond),
		KeyID:      c.p.KeyID,
		Action:     rt.method + " " + rt.pattern,
		Resource:   resource,
		RemoteAddr: c.r.RemoteAddr,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), 10*time.Second)
	defer cancel()
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.Error("recording an admin action in the audit log", "action", e.Action, "resource", e.Resource, "key_id", e.KeyID, "error", err)
	}
}

// bootstrapKey creates the first admin key into Config.BootstrapKeyFile
// when the store has none.
func (s *Server) bootstrapKey(ctx context.Context) error {
	if s.cfg.BootstrapKeyFile == "" {
		return nil
	}
	required, err := s.keys.Required(ctx)
	if err != nil || required {
		return err
	}
	f, err := os.OpenFile(s.cfg.BootstrapKeyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the bootstrap key file (it must not exist yet): %w", err)
	}
	k, err := s.keys.Create(ctx, auth.CreateParams{Name: "bootstrap admin", Roles: []string{string(auth.RoleAdmin)}})
	if err == nil {
		_, err = f.WriteString(k.Secret + "\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(s.cfg.BootstrapKeyFile)
		return fmt.Errorf("creating the bootstrap admin key: %w", err)
	}
	s.log.Info("created the first admin key; its secret is in the bootstrap key file", "key_id", k.ID, "file", s.cfg.BootstrapKeyFile)
	return nil
}
