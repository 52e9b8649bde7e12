package query

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// scanner is a pointer to a query's row type: dest lists pointers to its
// fields in SELECT order, so each query states its columns in one place.
type scanner[T any] interface {
	*T
	dest() []any
}

// each runs q and hands every row, scanned into a fresh T, to fn, in the
// order ClickHouse sends them. It is the only place rows are read: it closes
// them, checks rows.Err, stops at fn's first error and wraps every error
// with what (the page or query it serves).
func each[T any, P scanner[T]](ctx context.Context, conn driver.Conn, what, q string, args []any, fn func(*T) error) error {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v T
		if err := rows.Scan(P(&v).dest()...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := fn(&v); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// The row types of the queries, each with its columns in SELECT order.

type nameRow struct{ Name string }

func (r *nameRow) dest() []any { return []any{&r.Name} }

type columnRow struct{ Name, Type string }

func (r *columnRow) dest() []any { return []any{&r.Name, &r.Type} }

type countRow struct{ N uint64 }

func (r *countRow) dest() []any { return []any{&r.N} }

// counts are the record counts of one group: all, blocked, and near misses
// that were not blocked.
type counts struct{ Total, Blocked, Near uint64 }

// comboRow is one (bucket, team, alias, provider) group of NearMiss.
type comboRow struct {
	Bucket                uint32
	Team, Alias, Provider string
	counts
}

func (r *comboRow) dest() []any {
	return []any{&r.Bucket, &r.Team, &r.Alias, &r.Provider, &r.Total, &r.Blocked, &r.Near}
}

// fanOutRow is one group of NearMiss's fan-out form: Kind "b" counts bucket
// K1 (decimal seconds), kind "d" counts the combination K1, K2, K3.
type fanOutRow struct {
	Kind, K1, K2, K3 string
	counts
}

func (r *fanOutRow) dest() []any {
	return []any{&r.Kind, &r.K1, &r.K2, &r.K3, &r.Total, &r.Blocked, &r.Near}
}

// reasonRow is one (bucket, near-miss reason) group.
type reasonRow struct {
	Bucket         uint32
	Reason         string
	Total, Blocked uint64
}

func (r *reasonRow) dest() []any { return []any{&r.Bucket, &r.Reason, &r.Total, &r.Blocked} }

// samplingRow is one (bucket, tier, sampled, sample reason, review status)
// group: its records, the sample rate of its newest record and that
// record's start time.
type samplingRow struct {
	Bucket         uint32
	Tier           string
	Sampled        uint8
	Reason, Review string
	N              uint64
	Rate           float64
	Last           time.Time
}

func (r *samplingRow) dest() []any {
	return []any{&r.Bucket, &r.Tier, &r.Sampled, &r.Reason, &r.Review, &r.N, &r.Rate, &r.Last}
}

type bodyRow struct{ Body string }

func (r *bodyRow) dest() []any { return []any{&r.Body} }

// listRow is a Row as rowColumns reads it.
type listRow struct {
	Row
	nearMiss, sampled uint8
}

func (r *listRow) dest() []any {
	return []any{&r.RecordID, &r.Version, &r.Tenant, &r.StartTime, &r.Team, &r.Alias, &r.Provider, &r.Outcome, &r.BlockedBy,
		&r.nearMiss, &r.Reasons, &r.Tier, &r.sampled, &r.SampleReason, &r.ReviewStatus, &r.CostUSD, &r.DurationMS}
}

// row returns the Row: flags as booleans, the start time in UTC.
func (r *listRow) row() Row {
	out := r.Row
	out.NearMiss, out.Sampled = r.nearMiss == 1, r.sampled == 1
	out.StartTime = out.StartTime.UTC()
	return out
}

// versionRow is one row of a record's version history.
type versionRow struct {
	Version
	Tenant string
	Events uint64 // oversight events of the version
}

func (r *versionRow) dest() []any {
	return []any{&r.Version.Version, &r.Tenant, &r.Completeness, &r.ReviewStatus, &r.Events, &r.Partition, &r.Offset}
}
