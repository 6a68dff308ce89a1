package postgres

// Exported for the flow-control tests of package postgres_test.
var (
	LeaseCappedSQL = leaseCappedSQL
	OrderingLocks  = orderingLocks
)
