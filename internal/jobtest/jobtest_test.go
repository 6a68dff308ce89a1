package jobtest_test

import (
	"testing"

	"github.com/spoolq/spool/internal/jobtest"
)

func TestFullSetsEveryField(t *testing.T) {
	t.Parallel()
	jobtest.RequireEveryField(t, jobtest.Full())
}
