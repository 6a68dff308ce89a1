package engine

import "github.com/spoolq/spool"

// admitGrowth is the server-wide admission of new work (enqueues and
// publishes), checked before anything is read or written for it: the
// disk must be above its free-space mark. Work that frees space (leases,
// acks, cancels, purges) is never refused here.
func (e *Engine) admitGrowth() error {
	if err := e.cfg.DiskSpace.Check(); err != nil {
		e.m.refused(spool.CodeDiskFull)
		return err
	}
	return nil
}
