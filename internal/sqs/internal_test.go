package sqs

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/auth"
)

func TestNameMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ sqs, spool string }{
		{"emails", "emails"},
		{"MyQueue", "m.yq.ueue"},
		{"orders.fifo", "orders.fifo"},
		{"Orders.fifo", "o.rders.fifo"},
		{"_jobs", "0._jobs"},
		{"-x", "0.-x"},
		{"a_B-c9", "a_b.-c9"},
		{"ABC", "a.b.c."},
		{"0", "0"},
	} {
		got, err := toSpool(tc.sqs)
		require.NoError(t, err, tc.sqs)
		require.Equal(t, tc.spool, got, tc.sqs)
		back, ok := fromSpool(got)
		require.True(t, ok, got)
		require.Equal(t, tc.sqs, back)
	}
	// Spool names without an SQS name.
	for _, n := range []string{"1.x", "a..b", "0.abc", "a.b.c.d.e.f.g.h.fifo.x", "with.dot.inside-"} {
		if s, ok := fromSpool(n); ok {
			again, err := toSpool(s)
			require.NoError(t, err)
			require.Equal(t, n, again, "%q decoded to %q", n, s)
		}
	}
	_, ok := fromSpool("1.x")
	require.False(t, ok)
	_, ok = fromSpool("0.abc")
	require.False(t, ok)
	// Bad SQS names.
	for _, n := range []string{"", "a b", "a.b", ".fifo", strings.Repeat("a", 81), "é"} {
		_, err := toSpool(n)
		require.Error(t, err, "%q", n)
	}
	// Too long once mapped.
	_, err := toSpool(strings.Repeat("A", 70))
	require.ErrorContains(t, err, "too long")
}

func TestDigests(t *testing.T) {
	t.Parallel()
	// Values of a message delivered by Amazon SQS.
	s1 := "sample-value"
	require.Equal(t, "7c815262be77a62f56671125069ca888",
		attributesMD5(map[string]MessageAttribute{"sample-attribute": {DataType: "String", StringValue: &s1}}))
	require.Equal(t, "b58e1d0a86521415d25b85b89f6ad6cd", md5Hex("Sample content."))
	require.Equal(t, "", attributesMD5(nil))
}

func TestReceiptHandle(t *testing.T) {
	t.Parallel()
	id := "01890a5d-ac96-774b-bcce-b302099a8057"
	h := receiptHandle(id, "tok", "q")
	gotID, tok, err := parseReceiptHandle(h, "q")
	require.Nil(t, err)
	require.Equal(t, id, gotID)
	require.Equal(t, "tok", tok)
	for _, bad := range []string{"", "!!", h + "x", receiptHandle("not-a-uuid", "tok", "q")} {
		_, _, err := parseReceiptHandle(bad, "q")
		require.NotNil(t, err, bad)
		require.Equal(t, "ReceiptHandleIsInvalid", err.Code)
	}
	_, _, err = parseReceiptHandle(h, "other")
	require.NotNil(t, err)
}

func TestBodyAndPayload(t *testing.T) {
	t.Parallel()
	p, err := toPayload(`<a href="x">&</a>`, nil)
	require.NoError(t, err)
	require.Equal(t, `"<a href=\"x\">&</a>"`, string(p))
	require.NotNil(t, validBody("a\x00b"))
	require.NotNil(t, validBody(""))
	require.Nil(t, validBody("tab\tok ☃ 𝄞"))
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	for a := range actions {
		_, ok := permissions[a]
		require.True(t, ok, "action %s has no permission", a)
	}
	prod := PrincipalOf(&auth.Principal{KeyID: "k", Roles: []auth.Role{auth.RoleProducer}, Scopes: []string{"orders-*"}})
	require.True(t, prod.Allow("SendMessage", "orders-eu"))
	require.False(t, prod.Allow("SendMessage", "billing"))
	require.False(t, prod.Allow("ReceiveMessage", "orders-eu"))
	require.False(t, prod.Allow("CreateQueue", "orders-eu"))
	worker := PrincipalOf(&auth.Principal{KeyID: "w", Roles: []auth.Role{auth.RoleWorker}})
	require.True(t, worker.Allow("DeleteMessageBatch", "any"))
	require.False(t, worker.Allow("SendMessage", "any"))
	admin := PrincipalOf(&auth.Principal{KeyID: "a", Roles: []auth.Role{auth.RoleAdmin}})
	require.True(t, admin.Allow("DeleteQueue", "any"))
	require.False(t, admin.Allow("Bogus", "any"))
}
