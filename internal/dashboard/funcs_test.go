package dashboard

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
)

// Every history series a template draws exists (a misspelt one would
// fail the page), and an unknown one is refused, not drawn flat.
func TestTemplatesDrawKnownSeries(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("templates/*.html")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	call := regexp.MustCompile(`\{\{\s*(spark|chart)\s+\S+((?:\s+"[^"]*")+)\s*\}\}`)
	arg := regexp.MustCompile(`"([^"]*)"`)
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			args := arg.FindAllStringSubmatch(m[2], -1)
			if m[1] == "chart" {
				args = args[1:] // the title
			}
			for _, a := range args {
				require.Contains(t, pointFields, a[1], "%s: %s", f, strings.TrimSpace(m[0]))
				seen++
			}
		}
	}
	require.Positive(t, seen, "the templates draw series")

	ps := []spool.StatsPoint{{ArrivalRate: 1.5, Dead: 2}, {ArrivalRate: 3}}
	require.Equal(t, []float64{1.5, 3}, pointValues(ps, "arrival_rate"))
	require.Equal(t, []float64{2, 0}, pointValues(ps, "dead"))
	require.Panics(t, func() { pointValues(ps, "arrivals") })
}
