package auth

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzParseSecret: any string either is refused or names a valid id that
// it holds; Match never panics on patterns built from it.
func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{"", "spool_", "spool_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"spool_0123456789ABCDEF_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Bearer x", "spool_0123456789abcdef"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseSecret(s)
		if ok && (!ValidID(id) || !strings.Contains(s, id)) {
			t.Fatalf("ParseSecret(%q) = %q", s, id)
		}
		if ValidatePattern(s) == nil {
			_ = Match(s, "reports.daily")
		}
	})
}

// FuzzMatch checks Match against a regular expression of the pattern.
func FuzzMatch(f *testing.F) {
	f.Add("reports.*", "reports.daily")
	f.Add("a*b*c", "aXXbYYc")
	f.Add("*", "")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if ValidatePattern(pattern) != nil || ValidatePattern(strings.ReplaceAll(name, "*", "x")) != nil && name != "" {
			return // patterns and names use the queue-name alphabet
		}
		parts := strings.Split(pattern, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile(`\A` + strings.Join(parts, `(?s:.*)`) + `\z`)
		if got, want := Match(pattern, name), re.MatchString(name); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v", pattern, name, got, want)
		}
	})
}
