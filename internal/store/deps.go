package store

import "context"

// Dependencies is the part of the seam that lets the engine follow job
// dependencies (spool.Job.DependsOn). The store only finds jobs; the engine
// decides what a parent's end means for its children and writes that with
// Update.
type Dependencies interface {
	// Lookup returns the jobs among ids that exist, without payload and
	// result, in no particular order. Unknown ids are left out.
	Lookup(ctx context.Context, ids []string) ([]*Record, error)
	// WaitingChildren returns up to limit jobs in state waiting whose
	// DependsOn names any of parents, without payload and result, each
	// once.
	WaitingChildren(ctx context.Context, parents []string, limit int) ([]*Record, error)
}
