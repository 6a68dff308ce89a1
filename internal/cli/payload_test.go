package cli

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

func TestJobsPayloadFilter(t *testing.T) {
	t.Parallel()
	url, c := newServer(t)
	ctx := context.Background()
	ids := map[string]string{}
	for _, p := range []string{`{"customer":42}`, `{"customer":"acme"}`, `{"customer":"42"}`, `{"other":1}`} {
		j, err := c.Push(ctx, "q", "t", json.RawMessage(p))
		require.NoError(t, err)
		ids[p] = j.ID
	}
	list := func(args ...string) []string {
		t.Helper()
		r := runCLI(t, url, "", append([]string{"jobs", "q", "--json"}, args...)...)
		require.NoError(t, r.err, r.stderr)
		var page spool.JobList
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &page))
		var out []string
		for _, j := range page.Jobs {
			out = append(out, j.ID)
		}
		return out
	}
	require.Equal(t, []string{ids[`{"customer":42}`]}, list("--payload", "customer=42"))
	require.Equal(t, []string{ids[`{"customer":"42"}`]}, list("--payload", `customer="42"`))
	require.Equal(t, []string{ids[`{"customer":"acme"}`]}, list("--payload", "customer=acme"))

	r := runCLI(t, url, "", "queue", "drain", "q", "--payload", "customer=acme")
	require.NoError(t, r.err, r.stderr)
	require.Equal(t, "cancelled 1 job(s) of q\n", r.stdout)

	r = runCLI(t, url, "", "jobs", "q", "--payload", "customer")
	require.ErrorContains(t, r.err, "--payload wants FIELD=VALUE")
}
