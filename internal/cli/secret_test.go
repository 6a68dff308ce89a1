package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/server"
)

// The webhook secret comes from a flag, a file, or the environment, so
// that it need not show in process listings.
func TestWebhookSecretSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("from-file\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte(" \n"), 0o600))
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
		err  string
	}{
		{name: "none", want: ""},
		{name: "flag", args: []string{"--webhook-secret", "from-flag"}, want: "from-flag"},
		{name: "file flag", args: []string{"--webhook-secret-file", file}, want: "from-file"},
		{name: "env", vars: map[string]string{EnvWebhookSecret: "from-env"}, want: "from-env"},
		{name: "env file", vars: map[string]string{EnvWebhookSecretFile: file}, want: "from-file"},
		{name: "env secret and env file", vars: map[string]string{EnvWebhookSecret: "from-env", EnvWebhookSecretFile: file}, err: "not both"},
		{name: "file flag and env secret", args: []string{"--webhook-secret-file", file}, vars: map[string]string{EnvWebhookSecret: "from-env"}, err: "not both"},
		{name: "both flags", args: []string{"--webhook-secret", "x", "--webhook-secret-file", file}, err: "not both"},
		{name: "missing file", args: []string{"--webhook-secret-file", filepath.Join(dir, "nope")}, err: "reading the webhook secret"},
		{name: "empty file", vars: map[string]string{EnvWebhookSecretFile: empty}, err: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := env{getenv: func(k string) string { return tt.vars[k] }}
			cmd := &cobra.Command{}
			vals := &serveValues{}
			def := server.Config{}.WithDefaults()
			for _, st := range serveSettings {
				st.bind(cmd.Flags(), vals, &def, st.flag, st.usage)
			}
			require.NoError(t, cmd.ParseFlags(tt.args))
			err := applyEnv(cmd, e)
			if err == nil {
				err = vals.readSecretFile()
			}
			got := vals.cfg.WebhookSecret
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				require.Equal(t, 2, exitCode(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
