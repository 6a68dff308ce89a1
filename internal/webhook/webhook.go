// Package webhook delivers signed HTTP callbacks to targets outside the
// server's network: the building blocks of job completion webhooks. A
// Sender POSTs a body signed with spool.WebhookSignatureHeader, through an
// HTTP client that checks every address it dials against an allowlist, so
// a callback URL cannot be used to reach loopback, link-local or private
// services (checking at dial time, after DNS resolution, also defeats DNS
// rebinding). Retries belong to the caller (the job machinery).
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spoolq/spool"
)

// ErrRefused is returned (wrapped) for a target the allowlist refuses.
var ErrRefused = errors.New("webhook target refused")

// Allowlist decides which addresses may be dialed. Public unicast
// addresses are allowed; loopback, link-local, private (RFC 1918, unique
// local), carrier-grade NAT, unspecified, multicast and other special
// ranges are refused unless a prefix of Allow contains them.
type Allowlist struct {
	Allow []netip.Prefix
	// Hosts are host names (as written in callback URLs, compared without
	// case) whose addresses are all allowed, whatever they resolve to.
	Hosts []string
}

// ParseAllowlist reads allowlist entries: CIDR prefixes (10.0.0.0/8),
// addresses (127.0.0.1, ::1) or host names (hooks.internal).
func ParseAllowlist(entries []string) (Allowlist, error) {
	var a Allowlist
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		switch {
		case e == "":
			continue
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return Allowlist{}, fmt.Errorf("webhook allowlist entry %q is not a CIDR prefix: %v", raw, err)
			}
			a.Allow = append(a.Allow, p.Masked())
		default:
			if ip, err := netip.ParseAddr(e); err == nil {
				ip = ip.Unmap()
				a.Allow = append(a.Allow, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			if strings.ContainsAny(e, ":/?#@ ") {
				return Allowlist{}, fmt.Errorf("webhook allowlist entry %q is not a CIDR prefix, an address or a host name", raw)
			}
			a.Hosts = append(a.Hosts, strings.ToLower(strings.TrimSuffix(e, ".")))
		}
	}
	return a, nil
}

// hostAllowed reports whether host is one of a.Hosts.
func (a *Allowlist) hostAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range a.Hosts {
		if h == host {
			return true
		}
	}
	return false
}

// special lists ranges that are not public unicast beyond what netip's
// predicates cover.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach private IPv4
}

// Check returns nil if addr may be dialed, else an error wrapping
// ErrRefused.
func (a *Allowlist) Check(addr netip.Addr) error {
	addr = addr.Unmap()
	for _, p := range a.Allow {
		if p.Contains(addr) {
			return nil
		}
	}
	bad := !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified()
	for _, p := range special {
		bad = bad || p.Contains(addr)
	}
	if bad {
		return fmt.Errorf("%w: %s is a loopback, link-local, private or reserved address (allow it in the webhook allowlist to use it)", ErrRefused, addr)
	}
	return nil
}

// Config configures a Sender.
type Config struct {
	Allowlist Allowlist
	// Timeout bounds one delivery (default 10s).
	Timeout time.Duration
	// Now is the clock of the signature timestamp (default time.Now).
	Now func() time.Time
	// UserAgent is sent with every delivery (default "spool-webhook").
	UserAgent string
}

// Sender delivers webhooks.
type Sender struct {
	cfg Config
	hc  *http.Client
}

// NewSender returns a Sender whose HTTP client dials only addresses the
// allowlist accepts, uses no proxy and follows no redirects.
func NewSender(cfg Config) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "spool-webhook"
	}
	allow := cfg.Allowlist
	d := &net.Dialer{
		Timeout: cfg.Timeout,
		// Control runs for every address dialed, after resolution.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot parse the dialed address %q", ErrRefused, address)
			}
			return allow.Check(ap.Addr())
		},
	}
	// Hosts of the allowlist are dialed without the address check.
	trusted := &net.Dialer{Timeout: cfg.Timeout}
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(address); err == nil && len(allow.Hosts) > 0 && allow.hostAllowed(host) {
			return trusted.DialContext(ctx, network, address)
		}
		return d.DialContext(ctx, network, address)
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial on our behalf, unchecked
		DialContext:           dial,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Sender{cfg: cfg, hc: &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// CheckURL refuses callback URLs that can never be delivered: not http or
// https, no host, or credentials in the URL. Addresses are checked when
// dialed.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return spool.Invalidf("callback_url is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return spool.Invalidf("callback_url must be an http or https URL")
	}
	if u.Hostname() == "" {
		return spool.Invalidf("callback_url has no host")
	}
	if u.User != nil {
		return spool.Invalidf("callback_url must not carry credentials")
	}
	return nil
}

// CheckTarget refuses, when a job is enqueued, a callback URL that could
// never be delivered: one CheckURL refuses, an address outside the
// allowlist (loopback, link-local such as 169.254.169.254, private,
// reserved), or a host name that names an internal service by its form:
// localhost and *.localhost, a name without a dot (completed by the
// resolver's search domains), *.local, *.internal (metadata.google.internal
// among them), *.home.arpa, or an address in a form resolvers accept
// (2130706433, 0x7f.1, 127.1). Names are not resolved here: the dialer
// checks every address it connects to, which also holds when a name
// resolves to a private address, or to another address by the time of the
// delivery. The allowlist's names and prefixes are accepted.
func (a *Allowlist) CheckTarget(raw string) error {
	if err := CheckURL(raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return spool.Invalidf("callback_url is not a URL: %v", err)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if a.hostAllowed(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := a.Check(ip.WithZone("")); err != nil {
			return spool.Invalidf("callback_url: %v", err)
		}
		return nil
	}
	if internalName(host) {
		return spool.Invalidf("callback_url: %v: host %q names a local or internal service (allow it in the webhook allowlist to use it)", ErrRefused, host)
	}
	return nil
}

// internalName reports whether a host name is local or internal by its
// form alone.
func internalName(host string) bool {
	if host == "localhost" || !strings.Contains(host, ".") {
		return true
	}
	for _, suffix := range []string{".localhost", ".local", ".internal", ".home.arpa"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	if strings.HasPrefix(last, "0x") {
		return true
	}
	return strings.Trim(last, "0123456789") == ""
}

// Send POSTs body to target, signed with secret. Any answer but 2xx is an
// error (a 3xx too: redirects are not followed).
func (s *Sender) Send(ctx context.Context, target, secret string, body []byte) error {
	if err := CheckURL(target); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook to %s: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set(spool.WebhookSignatureHeader, spool.WebhookSignatureValue(secret, s.cfg.Now().Unix(), body))
	res, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook to %s: %w", target, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("webhook to %s: answered %s", target, res.Status)
	}
	return nil
}

// Close releases idle connections.
func (s *Sender) Close() { s.hc.CloseIdleConnections() }
