package query

import (
	"context"
	"fmt"
	"reflect"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/store"
)

// Candidate names of the columns holding a row's position in the decisions
// topic, first match wins.
var (
	partitionCols = []string{"kafka_partition", "decision_partition", "decisions_partition", "partition", "_partition"}
	offsetCols    = []string{"kafka_offset", "decision_offset", "decisions_offset", "offset", "_offset"}
)

func pick(cols map[string]string, names []string) string {
	for _, n := range names {
		if _, ok := cols[n]; ok {
			return n
		}
	}
	return ""
}

// Record returns one version of a record (the latest when version is 0) with
// its version history. A record is visible when its latest version belongs
// to one of f's tenants (only f's tenant scoping applies): a record of
// another tenant — including one a later version moved away — is
// ErrNotFound, exactly like a record that does not exist.
//
// The lookup goes through decision_versions (sorted by record_id) to the
// sort keys of the record's rows, so it reads a granule per version instead
// of the record_id column of the whole table; without that table, or when
// it has no row of the record yet (the view's insert follows the table's),
// it falls back to PREWHERE record_id.
func (c *ClickHouse) Record(ctx context.Context, f Filter, id string, version uint32) (Detail, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := f.scope(); err != nil { // refuses a filter without tenants
		return Detail{}, err
	}
	cols, err := c.columns(ctx)
	if err != nil {
		return Detail{}, err
	}
	hasVersions, err := c.hasTable(ctx, versionsTable)
	if err != nil {
		return Detail{}, err
	}
	type lookup struct {
		locate string
		args   []any
	}
	scan := lookup{"PREWHERE record_id = ?", []any{id}}
	lookups := []lookup{scan}
	if hasVersions {
		// decision_versions is filled by a materialized view after the
		// INSERT into the records table has committed: a record inserted a
		// moment ago can be in the table and not yet in the view's table,
		// so a miss there falls back to the scan instead of answering 404.
		lookups = []lookup{{"WHERE (tenant, start_time, record_id) IN (SELECT tenant, start_time, record_id FROM `" + c.db + "`.`" + versionsTable + "` WHERE record_id = ?) AND record_id = ?", []any{id, id}}, scan}
	}
	pcol, ocol := pick(cols, partitionCols), pick(cols, offsetCols)
	pos := "toInt32(-1), toInt64(-1)"
	if pcol != "" && ocol != "" {
		pos = "toInt32(`" + pcol + "`), toInt64(`" + ocol + "`)"
	}
	ovs := "toUInt64(0)"
	if _, ok := cols["oversight.event_id"]; ok {
		ovs = "toUInt64(length(`oversight.event_id`))"
	}
	// No FINAL and no tenant filter: the history wants every version, and
	// visibility is decided on the latest one below. Duplicates of one
	// version (before a merge) are dropped.
	var d Detail
	var tenants []string
	var locate string
	var args []any
	for _, l := range lookups {
		locate, args = l.locate, l.args
		q := "SELECT version, tenant, completeness, review_status, " + ovs + ", " + pos + " FROM " + c.table + " " + locate + " ORDER BY version DESC LIMIT 1000"
		err = each(ctx, c.conn, "record versions", q, args, func(r *versionRow) error {
			r.Oversight = int(r.Events)
			if len(d.Versions) > 0 && d.Versions[len(d.Versions)-1].Version == r.Version.Version {
				return nil
			}
			d.Versions = append(d.Versions, r.Version)
			tenants = append(tenants, r.Tenant)
			return nil
		})
		if err != nil {
			return Detail{}, err
		}
		if len(d.Versions) > 0 {
			break
		}
	}
	if len(d.Versions) == 0 || !f.sees(tenants[0]) {
		return Detail{}, ErrNotFound
	}
	if version == 0 {
		version = d.Versions[0].Version
	}
	found := false
	for _, v := range d.Versions {
		if v.Version == version {
			d.Partition, d.Offset, found = v.Partition, v.Offset, true
		}
	}
	if !found {
		return Detail{}, ErrNotFound
	}
	rows, err := c.conn.Query(ctx, "SELECT * FROM "+c.table+" "+locate+" AND version = ? LIMIT 1", append(args, version)...)
	if err != nil {
		return Detail{}, fmt.Errorf("record: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Detail{}, fmt.Errorf("record: %w", err)
		}
		return Detail{}, ErrNotFound
	}
	types := rows.ColumnTypes()
	ptrs := make([]any, len(types))
	for i, t := range types {
		ptrs[i] = reflect.New(t.ScanType()).Interface()
	}
	if err := rows.Scan(ptrs...); err != nil {
		return Detail{}, fmt.Errorf("record: %w", err)
	}
	values := make(map[string]any, len(types))
	for i, t := range types {
		values[t.Name()] = reflect.ValueOf(ptrs[i]).Elem().Interface()
	}
	d.Missing = Decode(values, &d.Decision)
	return d, nil
}

// Decode fills dec from one table row given as column name → scanned value:
// the decision codec's reader (store.DecodeDecisionRow), the inverse of what
// the store writes. It returns the JSON paths of fields it found no column
// for.
func Decode(values map[string]any, dec *record.Decision) (missing []string) {
	return store.DecodeDecisionRow(values, dec)
}
