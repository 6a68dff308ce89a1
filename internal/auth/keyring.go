package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/store"
)

// CacheTTL is how long a node trusts what it read of a key: a key created
// or revoked on another node takes effect here within it.
const CacheTTL = time.Second

// touchEvery is how often a key's last-used time is written at most.
const touchEvery = time.Minute

// Errors of Authenticate. They wrap spool.ErrUnauthorized; their messages
// never repeat the secret.
var (
	errMalformed = fmt.Errorf("%w: the Authorization header must be \"Bearer <secret>\" with a Spool key secret (spool_...)", spool.ErrUnauthorized)
	errUnknown   = fmt.Errorf("%w: the API key is not valid (unknown, revoked, expired or mistyped)", spool.ErrUnauthorized)
	// ErrNoSealer: the server has no encryption key, so no key can be
	// used for SigV4.
	ErrNoSealer = errors.New("auth: no secret encryption key is configured: SigV4 is unavailable")
)

// KeyringConfig configures a Keyring.
type KeyringConfig struct {
	Store store.Keys
	// Sealer, when set, encrypts new keys' secrets for SigV4.
	Sealer *Sealer
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Keyring authenticates secrets against the keys in the store, with a
// short cache so that every node sees a new or revoked key within CacheTTL.
// It is the one way into keys for every surface (HTTP API, SQS API,
// dashboard sessions, the CLI's offline create).
type Keyring struct {
	cfg KeyringConfig

	mu      sync.Mutex
	cache   map[string]cached
	anyKey  bool      // sticky: once a key exists, keys are required forever
	checked time.Time // when anyKey was last read from the store (while false)
	touched map[string]time.Time
}

type cached struct {
	rec  *store.KeyRecord // nil: no such key
	read time.Time
}

// NewKeyring returns a Keyring on cfg.Store.
func NewKeyring(cfg KeyringConfig) *Keyring {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Keyring{cfg: cfg, cache: make(map[string]cached), touched: make(map[string]time.Time)}
}

// Required reports whether requests need a key: true once any key was ever
// created (revoked ones count), read at most once per CacheTTL until then.
func (k *Keyring) Required(ctx context.Context) (bool, error) {
	k.mu.Lock()
	if k.anyKey || (!k.checked.IsZero() && k.cfg.Now().Sub(k.checked) < CacheTTL) {
		v := k.anyKey
		k.mu.Unlock()
		return v, nil
	}
	k.mu.Unlock()
	keys, err := k.cfg.Store.ListKeys(ctx)
	if err != nil {
		return true, fmt.Errorf("auth: reading keys: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.anyKey = k.anyKey || len(keys) > 0
	k.checked = k.cfg.Now()
	return k.anyKey, nil
}

// lookup returns a key by id, from the cache when fresh.
func (k *Keyring) lookup(ctx context.Context, id string) (*store.KeyRecord, error) {
	now := k.cfg.Now()
	k.mu.Lock()
	c, ok := k.cache[id]
	k.mu.Unlock()
	if ok && now.Sub(c.read) < CacheTTL {
		return c.rec, nil
	}
	rec, err := k.cfg.Store.GetKey(ctx, id)
	if errors.Is(err, spool.ErrNotFound) {
		rec, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: reading key %s: %w", id, err)
	}
	k.mu.Lock()
	if len(k.cache) > 10000 {
		clear(k.cache) // unknown ids tried in bulk: do not grow without end
	}
	k.cache[id] = cached{rec: rec, read: now}
	if rec != nil {
		k.anyKey = true
	}
	k.mu.Unlock()
	return rec, nil
}

// usable checks that a stored key may be used now.
func (k *Keyring) usable(rec *store.KeyRecord) bool {
	if rec == nil || rec.RevokedAt != nil {
		return false
	}
	return rec.ExpiresAt == nil || k.cfg.Now().Before(*rec.ExpiresAt)
}

// Authenticate returns the principal of a secret (the value of "Bearer
// <secret>"). A malformed, unknown, revoked or expired secret is an error
// wrapping spool.ErrUnauthorized; a store failure is any other error.
func (k *Keyring) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	id, ok := ParseSecret(secret)
	if !ok {
		return nil, errMalformed
	}
	rec, err := k.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if !k.usable(rec) || !CheckSecret(secret, rec.SecretHash) {
		return nil, errUnknown
	}
	k.noteUse(id)
	return principalOf(rec), nil
}

// SigV4 returns the secret of key id and its principal, for protocols that
// sign with the secret (the SQS API's SigV4). It fails with
// spool.ErrUnauthorized for an unknown, revoked or expired key or one
// created without an encryption key, and with ErrNoSealer when the server
// has no encryption key.
func (k *Keyring) SigV4(ctx context.Context, id string) (string, *Principal, error) {
	if k.cfg.Sealer == nil {
		return "", nil, ErrNoSealer
	}
	if !ValidID(id) {
		return "", nil, errUnknown
	}
	rec, err := k.lookup(ctx, id)
	if err != nil {
		return "", nil, err
	}
	if !k.usable(rec) || len(rec.SealedSecret) == 0 {
		return "", nil, errUnknown
	}
	secret, err := k.cfg.Sealer.Open(id, rec.SealedSecret)
	if err != nil {
		return "", nil, fmt.Errorf("%w: key %s was sealed under another encryption key", spool.ErrUnauthorized, id)
	}
	k.noteUse(id)
	return secret, principalOf(rec), nil
}

// ByID returns the principal of key id without its secret, for a caller
// that proved the identity otherwise (a client certificate the server's
// own authority signed). An unknown, revoked or expired key is an error
// wrapping spool.ErrUnauthorized.
func (k *Keyring) ByID(ctx context.Context, id string) (*Principal, error) {
	if !ValidID(id) {
		return nil, errUnknown
	}
	rec, err := k.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if !k.usable(rec) {
		return nil, errUnknown
	}
	k.noteUse(id)
	return principalOf(rec), nil
}

func principalOf(rec *store.KeyRecord) *Principal {
	p := &Principal{KeyID: rec.ID, Name: rec.Name, Scopes: rec.Queues, CanViewPayloads: rec.CanViewPayloads}
	for _, r := range rec.Roles {
		p.Roles = append(p.Roles, Role(r))
	}
	return p
}

// noteUse remembers that key id was used; FlushUses writes it.
func (k *Keyring) noteUse(id string) {
	now := k.cfg.Now()
	k.mu.Lock()
	k.touched[id] = now
	k.mu.Unlock()
}

// FlushUses writes the last-used times noted since the previous flush, at
// most one per key per minute of use.
func (k *Keyring) FlushUses(ctx context.Context) error {
	k.mu.Lock()
	var ids []string
	times := make(map[string]time.Time)
	for id, t := range k.touched {
		c, ok := k.cache[id]
		if ok && c.rec != nil && c.rec.LastUsedAt != nil && t.Sub(*c.rec.LastUsedAt) < touchEvery {
			continue
		}
		ids = append(ids, id)
		times[id] = t
		delete(k.touched, id)
		if ok && c.rec != nil {
			// Remember the write so the next flush skips the key for a
			// minute (the cached record is never handed out).
			r := c.rec.Clone()
			r.LastUsedAt = &t
			k.cache[id] = cached{rec: r, read: c.read}
		}
	}
	k.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := k.cfg.Store.TouchKey(ctx, id, times[id]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CreateParams describes a new key.
type CreateParams struct {
	Name            string
	Roles           []string
	Queues          []string
	CanViewPayloads bool
	// Expires is the key's lifetime (0: none).
	Expires time.Duration
}

// validate checks and normalises the parameters.
func (p *CreateParams) validate() error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || len(p.Name) > 200 {
		return spool.Invalidf("a key needs a name of 1 to 200 characters (what it is for)")
	}
	if len(p.Roles) == 0 {
		return spool.Invalidf("a key needs at least one role: admin, producer, worker or viewer")
	}
	seen := map[Role]bool{}
	var roles []string
	for _, r := range p.Roles {
		role, err := ParseRole(r)
		if err != nil {
			return spool.Invalidf("%v", err)
		}
		if !seen[role] {
			seen[role] = true
			roles = append(roles, string(role))
		}
	}
	sort.Strings(roles)
	p.Roles = roles
	if len(p.Queues) > 100 {
		return spool.Invalidf("a key may have at most 100 queue patterns, got %d", len(p.Queues))
	}
	for _, q := range p.Queues {
		if err := ValidatePattern(q); err != nil {
			return spool.Invalidf("%v", err)
		}
	}
	if p.Expires < 0 {
		return spool.Invalidf("a key's expiry must be a positive duration, got %s", p.Expires)
	}
	return nil
}

// Create makes a new key and returns it with its secret (the only time the
// secret is seen).
func (k *Keyring) Create(ctx context.Context, p CreateParams) (*spool.CreatedKey, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	id, secret, err := NewKey()
	if err != nil {
		return nil, err
	}
	now := k.cfg.Now().UTC().Truncate(time.Microsecond)
	rec := &store.KeyRecord{
		Key: spool.Key{
			ID: id, Name: p.Name, Roles: p.Roles, Queues: p.Queues,
			CanViewPayloads: p.CanViewPayloads, CreatedAt: now,
		},
		SecretHash: HashSecret(secret),
	}
	if len(p.Queues) == 0 {
		rec.Queues = nil
	}
	if p.Expires > 0 {
		exp := now.Add(p.Expires)
		rec.ExpiresAt = &exp
	}
	if k.cfg.Sealer != nil {
		if rec.SealedSecret, err = k.cfg.Sealer.Seal(id, secret); err != nil {
			return nil, err
		}
		rec.SigV4 = true
	}
	if err := k.cfg.Store.CreateKey(ctx, rec); err != nil {
		return nil, fmt.Errorf("auth: storing the new key: %w", err)
	}
	k.mu.Lock()
	k.anyKey = true
	delete(k.cache, id)
	k.mu.Unlock()
	return &spool.CreatedKey{Key: rec.Key, Secret: secret}, nil
}

// List returns every key (never a secret).
func (k *Keyring) List(ctx context.Context) ([]spool.Key, error) {
	recs, err := k.cfg.Store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]spool.Key, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Key)
	}
	return out, nil
}

// Revoke revokes key id at once on this node (other nodes within
// CacheTTL).
func (k *Keyring) Revoke(ctx context.Context, id string) (*spool.Key, error) {
	if !ValidID(id) {
		return nil, spool.Invalidf("key id %q is not 16 hex digits", truncate(id, 40))
	}
	rec, err := k.cfg.Store.RevokeKey(ctx, id, k.cfg.Now())
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.cache[id] = cached{rec: rec, read: k.cfg.Now()}
	k.mu.Unlock()
	return &rec.Key, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
