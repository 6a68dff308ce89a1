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
	// WaitingChildren returns, in id order, up to limit jobs with an id
	// after after ("" for the first page) that are in state waiting and
	// name any of parents in DependsOn, each once, without payload and
	// result.
	WaitingChildren(ctx context.Context, parents []string, after string, limit int) ([]*Record, error)
}
