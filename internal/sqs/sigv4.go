package sqs

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/internal/auth"
)

// SigningKeys finds an access key: its secret (the HMAC key of Signature
// Version 4, so the secret itself, not a hash) and the principal its
// requests run as. An unknown, revoked or expired key is
// ErrUnknownKey.
type SigningKeys interface {
	SigningKey(ctx context.Context, keyID string) (secret string, who *Principal, err error)
}

// ErrUnknownKey is what SigningKeys returns for a key that does not sign.
var ErrUnknownKey = errors.New("unknown access key")

// SigV4 authenticates requests signed with AWS Signature Version 4 (the
// Authorization header form every AWS SDK sends), the access key id being
// a Spool key id and the secret its secret.
type SigV4 struct {
	Keys SigningKeys
	// Now is the clock the request's X-Amz-Date is compared with (default
	// time.Now); MaxSkew the difference allowed (default 15 minutes, as
	// AWS).
	Now     func() time.Time
	MaxSkew time.Duration
}

const (
	sigAlgorithm   = "AWS4-HMAC-SHA256"
	sigService     = "sqs"
	amzDateFormat  = "20060102T150405Z"
	defaultMaxSkew = 15 * time.Minute
)

func authError(status int, code, format string, args ...any) *apiError {
	return newError(status, code, code, format, args...)
}

// Authenticate checks the request's signature over its method, path,
// query, signed headers and body.
func (v *SigV4) Authenticate(r *http.Request, body []byte) (*Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, authError(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token: sign it with Signature Version 4 and a Spool key (access key id = key id, secret = the key's secret).")
	}
	alg, rest, _ := strings.Cut(h, " ")
	if alg != sigAlgorithm {
		return nil, authError(http.StatusBadRequest, "IncompleteSignature", "Only %s signatures are accepted.", sigAlgorithm)
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = val
		case "SignedHeaders":
			signed = val
		case "Signature":
			sig = val
		}
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || signed == "" || sig == "" {
		return nil, authError(http.StatusBadRequest, "IncompleteSignature", "The Authorization header must name Credential=<key id>/<date>/<region>/sqs/aws4_request, SignedHeaders and Signature.")
	}
	keyID, day, region, service := scope[0], scope[1], scope[2], scope[3]
	if service != sigService {
		return nil, authError(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to the service 'sqs', not %q.", clip(service, 40))
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil || !strings.HasPrefix(amzDate, day) {
		return nil, authError(http.StatusForbidden, "IncompleteSignature", "X-Amz-Date must be the signing time (%s) of the credential's day.", amzDateFormat)
	}
	now, skew := time.Now, v.MaxSkew
	if v.Now != nil {
		now = v.Now
	}
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if d := now().Sub(t); d > skew || d < -skew {
		return nil, authError(http.StatusForbidden, "RequestExpired", "Signature expired: %s is more than %s from the server's time.", amzDate, skew)
	}
	secret, who, err := v.Keys.SigningKey(r.Context(), keyID)
	if errors.Is(err, ErrUnknownKey) {
		return nil, authError(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid (unknown, revoked or expired key, or one created without the server's secret encryption key).")
	}
	if err != nil {
		return nil, err
	}
	names := strings.Split(signed, ";")
	if !sort.StringsAreSorted(names) || !contains(names, "host") {
		return nil, authError(http.StatusForbidden, "SignatureDoesNotMatch", "SignedHeaders must be sorted and include host.")
	}
	creq := canonicalRequest(r, names, signed, body)
	sum := sha256.Sum256([]byte(creq))
	scopeStr := day + "/" + region + "/" + service + "/aws4_request"
	toSign := sigAlgorithm + "\n" + amzDate + "\n" + scopeStr + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+secret), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	key = hmacSHA256(key, "aws4_request")
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig))) {
		return nil, authError(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return who, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest is the request as Signature Version 4 hashes it.
func canonicalRequest(r *http.Request, names []string, signed string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	// Services other than S3 encode the (already escaped) path once more.
	b.WriteString(uriEncode(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		if n == "host" {
			b.WriteString(r.Host)
		} else {
			vals := r.Header.Values(n)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strings.Join(strings.Fields(v), " "))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signed)
	b.WriteByte('\n')
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		b.WriteString(h)
	} else {
		sum := sha256.Sum256(body)
		b.WriteString(hex.EncodeToString(sum[:]))
	}
	return b.String()
}

func canonicalQuery(q url.Values) string {
	type kv struct{ k, v string }
	var all []kv
	for k, vs := range q {
		for _, v := range vs {
			all = append(all, kv{uriEncode(k, true), uriEncode(v, true)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].k != all[j].k {
			return all[i].k < all[j].k
		}
		return all[i].v < all[j].v
	})
	parts := make([]string, len(all))
	for i, p := range all {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// uriEncode is Signature Version 4's URI encoding: unreserved characters
// (A-Z a-z 0-9 - _ . ~) kept, '/' kept unless slash, every other byte as
// %XX in upper case.
func uriEncode(s string, slash bool) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && !slash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexd[c>>4])
		b.WriteByte(hexd[c&15])
	}
	return b.String()
}

// permissions is the Spool permission each action needs.
var permissions = map[string]auth.Permission{
	"SendMessage":                  auth.Enqueue,
	"SendMessageBatch":             auth.Enqueue,
	"ReceiveMessage":               auth.Work,
	"DeleteMessage":                auth.Work,
	"DeleteMessageBatch":           auth.Work,
	"ChangeMessageVisibility":      auth.Work,
	"ChangeMessageVisibilityBatch": auth.Work,
	"GetQueueUrl":                  auth.View,
	"ListQueues":                   auth.View,
	"GetQueueAttributes":           auth.View,
	"ListQueueTags":                auth.View,
	"ListDeadLetterSourceQueues":   auth.View,
	"CreateQueue":                  auth.Admin,
	"SetQueueAttributes":           auth.Admin,
	"TagQueue":                     auth.Admin,
	"UntagQueue":                   auth.Admin,
	"PurgeQueue":                   auth.Admin,
	"DeleteQueue":                  auth.Admin,
}

// PrincipalOf is the Principal of a Spool key: an action is allowed when
// the key's roles grant the permission it needs and its scopes reach the
// queue.
func PrincipalOf(p *auth.Principal) *Principal {
	return &Principal{KeyID: p.KeyID, Allow: func(action, queue string) bool {
		perm, ok := permissions[action]
		return ok && p.Can(perm) && p.Reaches(queue)
	}}
}

// keyringAuth checks requests against a server's keys: none needed while
// no key exists (the server then runs open, on loopback only), SigV4 with
// a key after.
type keyringAuth struct {
	k *auth.Keyring
	v *SigV4
}

// KeyringAuth is the Authenticator of a server whose keys are k.
func KeyringAuth(k *auth.Keyring) Authenticator {
	return &keyringAuth{k: k, v: &SigV4{Keys: keyringKeys{k}}}
}

func (a *keyringAuth) Authenticate(r *http.Request, body []byte) (*Principal, error) {
	required, err := a.k.Required(r.Context())
	if err != nil {
		return nil, fmt.Errorf("%w: reading whether keys exist: %v", spool.ErrUnavailable, err)
	}
	if !required {
		return nil, nil
	}
	return a.v.Authenticate(r, body)
}

type keyringKeys struct{ k *auth.Keyring }

func (k keyringKeys) SigningKey(ctx context.Context, id string) (string, *Principal, error) {
	secret, p, err := k.k.SigV4(ctx, id)
	switch {
	case errors.Is(err, auth.ErrNoSealer):
		return "", nil, authError(http.StatusForbidden, "InvalidClientTokenId", "The server has no secret encryption key (--secret-key), so no key can sign SQS requests: Signature Version 4 needs the key's secret itself.")
	case errors.Is(err, spool.ErrUnauthorized):
		return "", nil, ErrUnknownKey
	case err != nil:
		return "", nil, err
	}
	return secret, PrincipalOf(p), nil
}
