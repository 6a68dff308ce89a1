package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spoolq/spool"
)

// CreateKey creates an API key (admin only) and returns it with its
// secret, which the server shows this once. It is not retried: a lost
// answer could otherwise leave a second key behind.
func (c *Client) CreateKey(ctx context.Context, req spool.CreateKeyRequest) (*spool.CreatedKey, error) {
	out := new(spool.CreatedKey)
	if _, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/keys", body: req}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Keys lists every API key (admin only), never a secret.
func (c *Client) Keys(ctx context.Context) ([]spool.Key, error) {
	var out spool.KeysResponse
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/keys", repeat: repeatSafe}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeKey revokes an API key (admin only) and returns it.
func (c *Client) RevokeKey(ctx context.Context, id string) (*spool.Key, error) {
	if id == "" {
		return nil, errors.New("client: RevokeKey: empty key id")
	}
	out := new(spool.Key)
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: "/v1/keys/" + pathEscape(id), repeat: repeatSafe}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Audit returns one page of the audit log (admin only), newest first;
// pass the answer's NextCursor as cursor for the next page.
func (c *Client) Audit(ctx context.Context, limit int, cursor string) (*spool.AuditResponse, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	out := new(spool.AuditResponse)
	if _, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/audit", query: q, repeat: repeatSafe}, out); err != nil {
		return nil, err
	}
	return out, nil
}
