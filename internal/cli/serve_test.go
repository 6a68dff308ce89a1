package cli

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/server"
)

// Every setting of server.Config a user may set has a flag of spool serve
// (and so an environment variable): a new field without one fails here.
func TestServeSettingsCoverConfig(t *testing.T) {
	t.Parallel()
	// Not settings: set by the program, not the user.
	notSettings := map[string]bool{"Logger": true, "Clock": true, "DiskStat": true}
	var fields []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name := prefix + f.Name
			switch {
			case notSettings[name]:
			case f.Type.Kind() == reflect.Struct:
				walk(name+".", f.Type)
			default:
				fields = append(fields, name)
			}
		}
	}
	walk("", reflect.TypeFor[server.Config]())
	have := map[string]string{}
	for _, st := range serveSettings {
		if st.field != "" {
			require.NotContains(t, have, st.field, "two flags fill %s", st.field)
			have[st.field] = st.flag
		}
	}
	for _, f := range fields {
		require.Contains(t, have, f, "server.Config.%s has no flag in serveSettings", f)
	}
	require.Len(t, have, len(fields), "a setting names a field server.Config does not have")
	require.Equal(t, "SPOOL_WEBHOOK_SECRET", envOf("webhook-secret"))
	require.Equal(t, EnvData, envOf("data"))
	require.Equal(t, EnvAddr, envOf("addr"))
	require.Equal(t, EnvStore, envOf("store"))
}
