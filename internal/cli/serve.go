package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/gctune"
	"github.com/spoolq/spool/internal/store/open"
	"github.com/spoolq/spool/internal/webhook"
	"github.com/spoolq/spool/server"
)

// EnvStore names the store of serve and migrate when --store is not given.
const EnvStore = "SPOOL_STORE"

// EnvWebhookSecret is the webhook signing secret when --webhook-secret is
// not given (the environment keeps it out of process listings).
const EnvWebhookSecret = "SPOOL_WEBHOOK_SECRET"

func newServeCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Spool server",
		Long: `Run the Spool server: the HTTP API on --addr, jobs stored in --data, or in
the PostgreSQL database --store names.

Settings come from the flag, else the environment variable, else the default:
  --addr        ` + EnvAddr + `        (default ` + DefaultAddr + `; port 0 picks a free port)
  --data        ` + EnvData + `        (default ` + DefaultDataDir + `)
  --store       ` + EnvStore + `       (default: the embedded store in --data)
  --log-level   ` + EnvLogLevel + `   (debug, info, warn, error; default info)
  --log-format  ` + EnvLogFormat + `  (text or json; default text)
  --webhook-secret  ` + EnvWebhookSecret + `  (default: none, webhooks off)

--store postgres://user:password@host:5432/database?search_path=spool makes
this node one of any number of nodes sharing that database (schema
search_path, default public; pool_max_conns=N sizes the connection pool,
default 16). Pending schema migrations are applied at start; 'spool migrate'
applies them beforehand.

--webhook-secret enables webhooks: jobs enqueued with a callback_url are
POSTed there, signed with this secret (header X-Spool-Signature), when they
finish. Loopback, link-local and private targets are refused unless
--webhook-allow names them (a CIDR prefix, an address or a host name;
repeatable). Without a secret, enqueues with a callback_url are refused.

The Go garbage collector lets the heap grow by max(256 MiB, its live size),
at most 4x its live size, between collections (GOGC set after each one),
under a soft memory limit of half the machine's (or the cgroup's) memory.
GOGC and GOMEMLIMIT in the environment override both (GOGC=100 for Go's
default).

Logs go to stderr. SIGINT or SIGTERM stops the server gracefully: it stops
accepting, ends long-polls and finishes in-flight requests.`,
		Args: argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd, e)
		},
	}
	f := cmd.Flags()
	f.String("addr", "", "listen address HOST:PORT")
	f.String("data", "", "data directory")
	f.String("store", "", "PostgreSQL URL of a store shared by several nodes (default: the embedded store in --data)")
	f.String("log-level", "", "log level: debug, info, warn or error")
	f.String("log-format", "", "log format: text or json")
	f.Duration("shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	f.Duration("body-read-timeout", server.DefaultBodyReadTimeout, "how long a request body may take to arrive (408 after)")
	f.Int64("max-body-memory", server.DefaultMaxBodyMemory, "bytes of buffer all request bodies being read may hold together (503 server_busy beyond)")
	f.String("webhook-secret", "", "secret that signs webhook deliveries; enables callback_url (prefer "+EnvWebhookSecret+")")
	f.StringArray("webhook-allow", nil, "private/loopback target webhooks may reach: CIDR, address or host name (repeatable)")
	return cmd
}

func serve(cmd *cobra.Command, e env) error {
	addr := setting(cmd, e, "addr", EnvAddr, DefaultAddr)
	dataDir := setting(cmd, e, "data", EnvData, DefaultDataDir)
	storeURL := setting(cmd, e, "store", EnvStore, "")
	if err := open.Check(storeURL); err != nil {
		return usagef("--store: %v", err)
	}
	where := "data directory " + strconv.Quote(dataDir)
	if storeURL != "" {
		where = "store " + open.Redact(storeURL)
	}
	log, err := newLogger(e.stderr,
		setting(cmd, e, "log-level", EnvLogLevel, "info"),
		setting(cmd, e, "log-format", EnvLogFormat, "text"))
	if err != nil {
		return err
	}
	gc := gctune.Apply(e.getenv, gctune.Memory)
	log.Info("garbage collector", "settings", gc.String())
	shutdown, _ := cmd.Flags().GetDuration("shutdown-timeout")
	if shutdown <= 0 {
		return usagef("--shutdown-timeout must be positive")
	}
	bodyTimeout, _ := cmd.Flags().GetDuration("body-read-timeout")
	if bodyTimeout <= 0 {
		return usagef("--body-read-timeout must be positive")
	}
	bodyMemory, _ := cmd.Flags().GetInt64("max-body-memory")
	if bodyMemory < spool.DefaultLimits.MaxBodyBytes {
		return usagef("--max-body-memory must be at least the request body limit, %d bytes", spool.DefaultLimits.MaxBodyBytes)
	}
	secret := setting(cmd, e, "webhook-secret", EnvWebhookSecret, "")
	allow, _ := cmd.Flags().GetStringArray("webhook-allow")
	if len(allow) > 0 && secret == "" {
		return usagef("--webhook-allow needs --webhook-secret (or %s): webhooks are off without a secret", EnvWebhookSecret)
	}
	if _, err := webhook.ParseAllowlist(allow); err != nil {
		return usagef("--webhook-allow: %v", err)
	}
	ctx := cmd.Context()

	srv, err := server.New(ctx, server.Config{
		Addr:            addr,
		DataDir:         dataDir,
		Store:           storeURL,
		Logger:          log,
		ShutdownTimeout: shutdown,
		BodyReadTimeout: bodyTimeout,
		MaxBodyMemory:   bodyMemory,
		WebhookSecret:   secret,
		WebhookAllow:    allow,
	})
	if err != nil {
		return fmt.Errorf("starting the server with %s: %w", where, err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			log.Error("closing the store", "error", err)
		}
	}()
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	if storeURL != "" {
		log.Info("listening", "addr", ln.Addr().String(), "store", open.Redact(storeURL))
	} else {
		log.Info("listening", "addr", ln.Addr().String(), "data", dataDir)
	}
	err = srv.Serve(ctx, ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	log.Info("stopped")
	return nil
}

// newLogger returns a slog logger writing to w.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: use text or json", format)
}
