package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spoolq/spool/internal/gctune"
	"github.com/spoolq/spool/internal/store/open"
	"github.com/spoolq/spool/server"
)

// EnvStore names the store of serve and migrate when --store is not given.
const EnvStore = "SPOOL_STORE"

// EnvWebhookSecret is the webhook signing secret when --webhook-secret is
// not given (the environment keeps it out of process listings).
const EnvWebhookSecret = "SPOOL_WEBHOOK_SECRET"

// EnvWebhookSecretFile names a file holding the webhook signing secret.
const EnvWebhookSecretFile = "SPOOL_WEBHOOK_SECRET_FILE"

// serveSetting is one setting of spool serve: a flag, the environment
// variable that sets it when the flag is not given (SPOOL_ and the flag's
// name in upper case, dashes as underscores), and the field of
// server.Config it fills ("" for the log settings, which are not in it).
// The table below is the whole list: flags = environment = config.
type serveSetting struct {
	flag, field, usage string
	bind               func(f *pflag.FlagSet, v *serveValues, def *server.Config, name, usage string)
	// secret settings never show their value in a message.
	secret bool
}

// serveValues are what the settings fill.
type serveValues struct {
	cfg                 server.Config
	logLevel, logFormat string
	// secretFile holds the webhook secret (read into cfg.WebhookSecret).
	secretFile string
}

func envOf(flag string) string {
	return "SPOOL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Binders of the setting kinds: each binds a flag to a field, with the
// field's default as the flag's default.
func strSetting(get func(*server.Config) *string) func(*pflag.FlagSet, *serveValues, *server.Config, string, string) {
	return func(f *pflag.FlagSet, v *serveValues, def *server.Config, name, usage string) {
		f.StringVar(get(&v.cfg), name, *get(def), usage)
	}
}

func durSetting(get func(*server.Config) *time.Duration) func(*pflag.FlagSet, *serveValues, *server.Config, string, string) {
	return func(f *pflag.FlagSet, v *serveValues, def *server.Config, name, usage string) {
		f.DurationVar(get(&v.cfg), name, *get(def), usage)
	}
}

func intSetting(get func(*server.Config) *int) func(*pflag.FlagSet, *serveValues, *server.Config, string, string) {
	return func(f *pflag.FlagSet, v *serveValues, def *server.Config, name, usage string) {
		f.IntVar(get(&v.cfg), name, *get(def), usage)
	}
}

func int64Setting(get func(*server.Config) *int64) func(*pflag.FlagSet, *serveValues, *server.Config, string, string) {
	return func(f *pflag.FlagSet, v *serveValues, def *server.Config, name, usage string) {
		f.Int64Var(get(&v.cfg), name, *get(def), usage)
	}
}

func boolSetting(get func(*server.Config) *bool) func(*pflag.FlagSet, *serveValues, *server.Config, string, string) {
	return func(f *pflag.FlagSet, v *serveValues, def *server.Config, name, usage string) {
		f.BoolVar(get(&v.cfg), name, *get(def), usage)
	}
}

var serveSettings = []serveSetting{
	{flag: "addr", field: "Addr", usage: "listen address HOST:PORT (port 0 picks a free port)",
		bind: strSetting(func(c *server.Config) *string { return &c.Addr })},
	{flag: "data", field: "DataDir", usage: "data directory of the embedded store",
		bind: strSetting(func(c *server.Config) *string { return &c.DataDir })},
	{flag: "store", field: "Store", usage: "PostgreSQL URL of a store shared by several nodes (default: the embedded store in --data)",
		bind: strSetting(func(c *server.Config) *string { return &c.Store }), secret: true},
	{flag: "log-level", usage: "log level: debug, info, warn or error",
		bind: func(f *pflag.FlagSet, v *serveValues, _ *server.Config, name, usage string) {
			f.StringVar(&v.logLevel, name, "info", usage)
		}},
	{flag: "log-format", usage: "log format: text or json",
		bind: func(f *pflag.FlagSet, v *serveValues, _ *server.Config, name, usage string) {
			f.StringVar(&v.logFormat, name, "text", usage)
		}},
	// Queue defaults: where a queue's own settings are silent.
	{flag: "max-depth", field: "Defaults.MaxDepth", usage: "default most jobs not yet finished per queue; more are refused with queue_full",
		bind: int64Setting(func(c *server.Config) *int64 { return &c.Defaults.MaxDepth })},
	{flag: "retention", field: "Defaults.Retention", usage: "default time finished jobs are kept",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.Defaults.Retention })},
	{flag: "max-attempts", field: "Defaults.MaxAttempts", usage: "default attempts before a job is dead",
		bind: intSetting(func(c *server.Config) *int { return &c.Defaults.MaxAttempts })},
	{flag: "backoff-base", field: "Defaults.BackoffBase", usage: "default delay before the first retry (doubling after each failure)",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.Defaults.BackoffBase })},
	{flag: "backoff-max", field: "Defaults.BackoffMax", usage: "default longest delay before a retry",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.Defaults.BackoffMax })},
	{flag: "lease", field: "Defaults.Lease", usage: "lease duration when a lease request or heartbeat names none",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.Defaults.Lease })},
	{flag: "drop-unrouted", field: "Defaults.DropUnrouted", usage: "accept a publish that no subscription takes as a no-op (default: 404 no_subscribers)",
		bind: boolSetting(func(c *server.Config) *bool { return &c.Defaults.DropUnrouted })},
	// Limits.
	{flag: "max-payload-bytes", field: "Limits.MaxPayloadBytes", usage: "largest job payload or result, in bytes (413 beyond)",
		bind: intSetting(func(c *server.Config) *int { return &c.Limits.MaxPayloadBytes })},
	{flag: "max-body-bytes", field: "Limits.MaxBodyBytes", usage: "largest request body, in bytes (413 beyond)",
		bind: int64Setting(func(c *server.Config) *int64 { return &c.Limits.MaxBodyBytes })},
	{flag: "max-batch", field: "Limits.MaxBatch", usage: "most jobs in one batch request",
		bind: intSetting(func(c *server.Config) *int { return &c.Limits.MaxBatch })},
	{flag: "max-lease", field: "Limits.MaxLease", usage: "most jobs one lease request may take",
		bind: intSetting(func(c *server.Config) *int { return &c.Limits.MaxLease })},
	{flag: "max-body-memory", field: "MaxBodyMemory", usage: "bytes of buffer all request bodies being read may hold together (503 server_busy beyond)",
		bind: int64Setting(func(c *server.Config) *int64 { return &c.MaxBodyMemory })},
	// Timeouts.
	{flag: "request-timeout", field: "RequestTimeout", usage: "how long one request may work (long-poll waits come on top)",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.RequestTimeout })},
	{flag: "body-read-timeout", field: "BodyReadTimeout", usage: "how long a request body may take to arrive (408 after)",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.BodyReadTimeout })},
	{flag: "shutdown-timeout", field: "ShutdownTimeout", usage: "how long a graceful shutdown may take",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.ShutdownTimeout })},
	// Webhooks.
	{flag: "webhook-secret", field: "WebhookSecret", usage: "secret that signs webhook deliveries; enables callback_url (prefer --webhook-secret-file or " + EnvWebhookSecret + ": process listings show flags)",
		bind: strSetting(func(c *server.Config) *string { return &c.WebhookSecret }), secret: true},
	{flag: "webhook-secret-file", usage: "file holding the webhook secret (white space around it ignored)",
		bind: func(f *pflag.FlagSet, v *serveValues, _ *server.Config, name, usage string) {
			f.StringVar(&v.secretFile, name, "", usage)
		}},
	{flag: "webhook-allow", field: "WebhookAllow", usage: "private/loopback target webhooks may reach: CIDR, address or host name (repeatable; comma-separated in the environment)",
		bind: func(f *pflag.FlagSet, v *serveValues, _ *server.Config, name, usage string) {
			f.StringArrayVar(&v.cfg.WebhookAllow, name, nil, usage)
		}},
	{flag: "webhook-timeout", field: "WebhookTimeout", usage: "how long one webhook delivery may take",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.WebhookTimeout })},
	// Resources.
	{flag: "max-queues", field: "MaxQueues", usage: "most queues on the server (cluster-wide); a new queue beyond is refused with 507 too_many_queues",
		bind: int64Setting(func(c *server.Config) *int64 { return &c.MaxQueues })},
	{flag: "max-payload-stored", field: "MaxPayloadStored", usage: "most payload bytes of the jobs not yet finished across all queues (cluster-wide); more get 503 storage_full (default: embedded, half the data volume; PostgreSQL, 100 GiB)",
		bind: int64Setting(func(c *server.Config) *int64 { return &c.MaxPayloadStored })},
	{flag: "max-jobs", field: "MaxJobs", usage: "most jobs not yet finished across all queues (cluster-wide); more get 503 server_full (default: embedded, a quarter of memory at 1 KiB per job, at least 100000; PostgreSQL, 10000000)",
		bind: int64Setting(func(c *server.Config) *int64 { return &c.MaxJobs })},
	{flag: "min-free-space", field: "MinFreeSpace", usage: "free-space low-water mark of the data volume, below which enqueues and publishes get 503 disk_full: a size (512MiB), a percentage (5%) or off (default: the smaller of 1GiB and 5% of the volume)",
		bind: strSetting(func(c *server.Config) *string { return &c.MinFreeSpace })},
	// The SQS API.
	{flag: "sqs-addr", field: "SQSAddr", usage: "also serve the Amazon SQS API on HOST:PORT (default: off; 127.0.0.1:9324 is the SQS emulators' port; see docs/sqs.md)",
		bind: strSetting(func(c *server.Config) *string { return &c.SQSAddr })},
	{flag: "sqs-region", field: "SQSRegion", usage: "region in the SQS API's queue ARNs",
		bind: strSetting(func(c *server.Config) *string { return &c.SQSRegion })},
	// Access control.
	{flag: "allowed-host", field: "AllowedHosts", usage: "host name the Host header may carry while the server runs without API keys, besides addresses and localhost (repeatable; comma-separated in the environment)",
		bind: func(f *pflag.FlagSet, v *serveValues, _ *server.Config, name, usage string) {
			f.StringArrayVar(&v.cfg.AllowedHosts, name, nil, usage)
		}},
	{flag: "insecure-open-on-trusted-network", field: "InsecureOpenOnTrustedNetwork", usage: "serve beyond loopback WITHOUT any API key: anyone who reaches the port may do anything",
		bind: boolSetting(func(c *server.Config) *bool { return &c.InsecureOpenOnTrustedNetwork })},
	{flag: "secret-key", field: "SecretKey", usage: "64 hex digits (openssl rand -hex 32) that encrypt new keys' secrets so they can sign SQS API requests (SigV4); prefer SPOOL_SECRET_KEY or --secret-key-file",
		bind: strSetting(func(c *server.Config) *string { return &c.SecretKey }), secret: true},
	{flag: "secret-key-file", field: "SecretKeyFile", usage: "file holding the --secret-key",
		bind: strSetting(func(c *server.Config) *string { return &c.SecretKeyFile })},
	{flag: "tls-cert", field: "TLSCert", usage: "PEM certificate (chain) to serve HTTPS with, TLS 1.2 or later (with --tls-key)",
		bind: strSetting(func(c *server.Config) *string { return &c.TLSCert })},
	{flag: "tls-key", field: "TLSKey", usage: "PEM private key of --tls-cert",
		bind: strSetting(func(c *server.Config) *string { return &c.TLSKey })},
	{flag: "tls-client-ca", field: "TLSClientCA", usage: "PEM certificate authority whose client certificates are required (mutual TLS)",
		bind: strSetting(func(c *server.Config) *string { return &c.TLSClientCA })},
	{flag: "bootstrap-key-file", field: "BootstrapKeyFile", usage: "when no API key exists yet, create an admin key and write its secret to this new file (for containers)",
		bind: strSetting(func(c *server.Config) *string { return &c.BootstrapKeyFile })},
	{flag: "read-header-timeout", field: "ReadHeaderTimeout", usage: "how long a client may take to send a request's headers (the connection is closed after)",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.ReadHeaderTimeout })},
	{flag: "idle-timeout", field: "IdleTimeout", usage: "how long a keep-alive connection may sit idle between requests",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.IdleTimeout })},
	{flag: "max-header-bytes", field: "MaxHeaderBytes", usage: "most bytes of a request's headers (431 too_large beyond)",
		bind: intSetting(func(c *server.Config) *int { return &c.MaxHeaderBytes })},
	{flag: "max-connections", field: "MaxConnections", usage: "most connections held at once; beyond, new ones get 503 server_busy and are closed",
		bind: intSetting(func(c *server.Config) *int { return &c.MaxConnections })},
	{flag: "max-waits-per-key", field: "MaxWaitsPerKey", usage: "most long-polls and event streams one key (without keys: one client address) holds at once; beyond, 429 too_many_waits",
		bind: intSetting(func(c *server.Config) *int { return &c.MaxWaitsPerKey })},
	{flag: "audit-retention", field: "AuditRetention", usage: "how long audit log entries are kept",
		bind: durSetting(func(c *server.Config) *time.Duration { return &c.AuditRetention })},
	{flag: "auth-failures", field: "AuthFailures", usage: "failed authentications a client address may make per minute before it is answered 429",
		bind: intSetting(func(c *server.Config) *int { return &c.AuthFailures })},
}

func newServeCmd(e env) *cobra.Command {
	vals := &serveValues{}
	var envList strings.Builder
	for _, st := range serveSettings {
		fmt.Fprintf(&envList, "  --%-20s %s\n", st.flag, envOf(st.flag))
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Spool server",
		Long: `Run the Spool server: the HTTP API on --addr, jobs stored in --data, or in
the PostgreSQL database --store names.

Every setting comes from its flag, else its environment variable, else its
default (see the flags below); 0 or empty means the default:
` + envList.String() + `
--store postgres://user:password@host:5432/database?search_path=spool makes
this node one of any number of nodes sharing that database (schema
search_path, default public; pool_max_conns=N sizes the connection pool,
default 16). Pending schema migrations are applied at start; 'spool migrate'
applies them beforehand.

--max-depth, --retention, --max-attempts, --backoff-base and --backoff-max
are the defaults of queues whose own settings ('spool queue set') are
silent.

A webhook secret enables webhooks: jobs enqueued with a callback_url are
POSTed there, signed with the secret (header X-Spool-Signature), when they
finish. Give it in a file (--webhook-secret-file) or the environment rather
than with --webhook-secret, which process listings show. Loopback,
link-local, private and internal targets are refused, at enqueue and at
connect time, unless --webhook-allow names them (a CIDR prefix, an address
or a host name; repeatable). Without a secret, enqueues with a callback_url
are refused.

--min-free-space is the free-space low-water mark of the volume that holds
--data: below it, enqueues and publishes are refused (503, code disk_full,
with Retry-After) while reads, leases, acks, cancels and purges go on, and
they are admitted again as soon as space is back above it. A size (512MiB,
2GB, bytes), a percentage of the volume (5%), or off. If the disk fills
anyway and the store cannot write, /healthz answers 503 and the server
stops with a non-zero exit status, so that a supervisor restarts it; a
start on a disk too full to open the store fails at once.

The Go garbage collector lets the heap grow by max(256 MiB, its live size),
at most 4x its live size, between collections (GOGC set after each one),
under a soft memory limit of half the machine's (or the cgroup's, v2 or
v1) memory.
GOGC and GOMEMLIMIT in the environment override both (GOGC=100 for Go's
default).

Logs go to stderr. SIGINT or SIGTERM stops the server gracefully: it stops
accepting, ends long-polls and finishes in-flight requests.`,
		Args: argsBetween(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd, e, vals)
		},
	}
	def := server.Config{}.WithDefaults()
	for _, st := range serveSettings {
		st.bind(cmd.Flags(), vals, &def, st.flag, st.usage)
	}
	return cmd
}

// applyEnv sets each setting whose flag is not given from its environment
// variable, parsed as the flag would be.
func applyEnv(cmd *cobra.Command, e env) error {
	f := cmd.Flags()
	for _, st := range serveSettings {
		v := strings.TrimSpace(e.getenv(envOf(st.flag)))
		if v == "" || f.Changed(st.flag) {
			continue
		}
		vals := []string{v}
		if st.flag == "webhook-allow" || st.flag == "allowed-host" {
			vals = strings.Split(v, ",")
		}
		for _, x := range vals {
			if err := f.Set(st.flag, strings.TrimSpace(x)); err != nil {
				if st.secret {
					return usagef("%s: cannot be used", envOf(st.flag))
				}
				return usagef("%s=%q: %v", envOf(st.flag), v, err)
			}
		}
	}
	return nil
}

// configUsage turns the config errors of server.Config.Validate into a
// usage error naming the flags (and environment variables) at fault.
func configUsage(err error) error {
	ces := server.ConfigErrors(err)
	if len(ces) == 0 {
		return err
	}
	var msgs []string
	for _, ce := range ces {
		name := "Config." + ce.Field
		for _, st := range serveSettings {
			if st.field == ce.Field {
				name = "--" + st.flag + " (" + envOf(st.flag) + ")"
				break
			}
		}
		msgs = append(msgs, name+" "+ce.Problem)
	}
	return usagef("%s", strings.Join(msgs, "; "))
}

func serve(cmd *cobra.Command, e env, vals *serveValues) error {
	if err := applyEnv(cmd, e); err != nil {
		return err
	}
	if err := vals.readSecretFile(); err != nil {
		return err
	}
	cfg := vals.cfg
	if err := cfg.WithDefaults().Validate(); err != nil {
		return configUsage(err)
	}
	where := "data directory " + strconv.Quote(cfg.WithDefaults().DataDir)
	if cfg.Store != "" {
		where = "store " + open.Redact(cfg.Store)
	}
	log, err := newLogger(e.stderr, vals.logLevel, vals.logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = log
	gc := gctune.Apply(e.getenv, gctune.Memory)
	log.Info("garbage collector", "settings", gc.String())
	ctx := cmd.Context()

	srv, err := server.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("starting the server with %s: %w", where, err)
	}
	defer func() {
		if err := srv.Close(); err != nil {
			log.Error("closing the store", "error", err)
		}
	}()
	addr := cfg.WithDefaults().Addr
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	if cfg.Store != "" {
		log.Info("listening", "addr", ln.Addr().String(), "store", open.Redact(cfg.Store))
	} else {
		log.Info("listening", "addr", ln.Addr().String(), "data", cfg.WithDefaults().DataDir)
	}
	// Both listeners stop together, whichever stops first.
	sqsCtx, stopSQS := context.WithCancel(ctx)
	defer stopSQS()
	sqsDone := make(chan error, 1)
	if cfg.SQSAddr != "" {
		sln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.SQSAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listening on %s for the SQS API: %w", cfg.SQSAddr, err)
		}
		log.Info("listening for the SQS API", "addr", sln.Addr().String())
		go func() {
			err := srv.ServeSQS(sqsCtx, sln)
			stopSQS()
			sqsDone <- err
		}()
	} else {
		sqsDone <- nil
	}
	err = srv.Serve(sqsCtx, ln)
	stopSQS()
	sqsErr := <-sqsDone
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	if sqsErr != nil {
		return sqsErr
	}
	log.Info("stopped")
	return nil
}

// readSecretFile reads the webhook secret from --webhook-secret-file (or
// SPOOL_WEBHOOK_SECRET_FILE), if given.
func (v *serveValues) readSecretFile() error {
	if v.secretFile == "" {
		return nil
	}
	if v.cfg.WebhookSecret != "" {
		return usagef("give the webhook secret (--webhook-secret, %s) or a file holding it (--webhook-secret-file, %s), not both", EnvWebhookSecret, EnvWebhookSecretFile)
	}
	b, err := os.ReadFile(v.secretFile)
	if err != nil {
		return usagef("reading the webhook secret: %v", err)
	}
	v.cfg.WebhookSecret = strings.TrimSpace(string(b))
	if v.cfg.WebhookSecret == "" {
		return usagef("the webhook secret file %s is empty", v.secretFile)
	}
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
