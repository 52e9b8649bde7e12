package enrich

// For the external tests (crash_test.go, package enrich_test, which runs the
// binary through internal/stacktest — a package that imports this one
// through internal/app).
var (
	FirstDiff = firstDiff
	Latest    = latest
	Canonical = canonical
)
