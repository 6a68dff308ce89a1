package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"emails", "emails", true},
		{"emails", "emails2", false},
		{"reports.*", "reports.daily", true},
		{"reports.*", "reports", false},
		{"reports.*", "xreports.daily", false},
		{"*", "anything", true},
		{"*.eu", "billing.eu", true},
		{"*.eu", "billing.us", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXcYYb", false},
		{"a**", "a", true},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Match(c.pat, c.name), "Match(%q, %q)", c.pat, c.name)
	}
}

func TestValidatePattern(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidatePattern("reports.*"))
	for _, bad := range []string{"", "Reports", "a b", "a/b", strings.Repeat("a", 129)} {
		require.Error(t, ValidatePattern(bad), bad)
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	for _, p := range Permissions {
		require.True(t, Grants(RoleAdmin, p), "admin lacks %s", p)
	}
	require.True(t, Grants(RoleProducer, Enqueue))
	require.False(t, Grants(RoleProducer, Work))
	require.True(t, Grants(RoleWorker, Work))
	require.False(t, Grants(RoleWorker, Enqueue))
	require.True(t, Grants(RoleViewer, View))
	require.False(t, Grants(RoleViewer, Cancel))
	for _, r := range Roles {
		require.True(t, Grants(r, Public))
		require.Equal(t, r == RoleAdmin, Grants(r, Admin), "role %s and admin", r)
	}
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	p := &Principal{KeyID: "k", Roles: []Role{RoleWorker, RoleProducer}, Scopes: []string{"reports.*"}}
	require.True(t, p.Can(Work))
	require.True(t, p.Can(Enqueue))
	require.False(t, p.Can(View))
	require.True(t, p.Reaches("reports.daily"))
	require.False(t, p.Reaches("emails"))
	require.True(t, p.SeesPayloads())
	v := &Principal{Roles: []Role{RoleViewer}}
	require.False(t, v.SeesPayloads())
	v.CanViewPayloads = true
	require.True(t, v.SeesPayloads())
	require.True(t, OpenPrincipal.Can(Admin))
	require.True(t, OpenPrincipal.Reaches("x"))
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	id, secret, err := NewKey()
	require.NoError(t, err)
	require.True(t, ValidID(id))
	got, ok := ParseSecret(secret)
	require.True(t, ok)
	require.Equal(t, id, got)
	h := HashSecret(secret)
	require.True(t, CheckSecret(secret, h))
	require.False(t, CheckSecret(other(secret), h))
	for _, bad := range []string{"", "spool_", secret[:len(secret)-1], "x" + secret[1:], strings.ToUpper(secret)} {
		_, ok := ParseSecret(bad)
		require.False(t, ok, bad)
	}
	_, second, err := NewKey()
	require.NoError(t, err)
	require.NotEqual(t, secret, second)
}

func TestSealer(t *testing.T) {
	t.Parallel()
	key, err := ParseSealerKey(strings.Repeat("ab", 32) + "\n")
	require.NoError(t, err)
	s, err := NewSealer(key)
	require.NoError(t, err)
	sealed, err := s.Seal("id1", "the secret")
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "the secret")
	got, err := s.Open("id1", sealed)
	require.NoError(t, err)
	require.Equal(t, "the secret", got)
	_, err = s.Open("id2", sealed) // bound to the id
	require.Error(t, err)
	_, err = ParseSealerKey("abcd")
	require.Error(t, err)
	none, err := LoadSealer("", "")
	require.NoError(t, err)
	require.Nil(t, none)
}

// other changes the last character of a secret.
func other(secret string) string {
	last := "A"
	if strings.HasSuffix(secret, "A") {
		last = "B"
	}
	return secret[:len(secret)-1] + last
}

// Many stars do not make matching slow (no backtracking blow-up).
func TestMatchManyStars(t *testing.T) {
	t.Parallel()
	pat := strings.Repeat("a*", 60) + "b"
	name := strings.Repeat("a", 128)
	require.False(t, Match(pat, name))
	require.True(t, Match(pat, name+"b"))
}
