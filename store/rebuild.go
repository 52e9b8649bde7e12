package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Rebuilding decision_records. ClickHouse cannot change a table's sorting
// key or engine in place, so when the layout migrate wants for this server
// (decisionLayout and the column types) differs from the one the table was
// built with, migrate builds a new table and swaps it in:
//
//  1. It refuses while a store is writing (store_progress has a row from the
//     last minute): rows inserted during the copy would miss the
//     materialized views. Stop the store, run migrate, start the store.
//  2. CREATE decision_records__rebuild with the new layout; INSERT … SELECT
//     every row of decision_records (columns by name; a type that differs is
//     converted by ClickHouse); the row counts must match.
//  3. DROP the three materialized views that read decision_records, RENAME
//     decision_records to decision_records__old and decision_records__rebuild
//     to decision_records in one statement, CREATE the views again.
//  4. Rows that reached decision_records__old after the copy (none, with the
//     store stopped) are copied too; only when the new table holds at least
//     as many rows as the old one is the old one dropped — otherwise it is
//     kept and migrate fails with both counts.
//
// Every step is idempotent: an interrupted rebuild is run again by the next
// migrate (a leftover decision_records__rebuild is dropped first; a leftover
// decision_records__old is copied from again before it is dropped).
//
// The layout is recorded in schema_migrations as "decision_records layout"
// with the checksum of layoutSignature. Tables created before the record
// existed (layout 1: sorted without the version, so merges dropped older
// versions) are rebuilt once.

const (
	layoutRecord    = "decision_records layout"
	rebuildSuffix   = "__rebuild"
	oldSuffix       = "__old"
	storeQuietSince = time.Minute
)

// layoutSignature identifies decision_records' layout for this server: what
// a rebuild changes.
func (s schema) layoutSignature() string {
	return s.decisionLayout() + s.lay().signature()
}

// decisionViews are the materialized views reading decision_records, with
// the statements that create them.
func (s schema) decisionViews() (names, create []string) {
	for _, q := range append(s.progressDDL(), s.versionsDDL()...) {
		m := createMV.FindStringSubmatch(q)
		if m == nil || unquote(m[4]) != TableDecisions {
			continue
		}
		names = append(names, m[1])
		create = append(create, q)
	}
	return names, create
}

// rebuildDecisions rebuilds decision_records in the current layout (see
// above) and returns what it did.
func (s schema) rebuildDecisions(ctx context.Context, conn driver.Conn, log *slog.Logger) (string, error) {
	exec := func(what, q string) error {
		if err := conn.Exec(ctx, q); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("migrate: rebuild decision_records: %s: %w (the rebuild copies every row: allow it the time, e.g. auditline migrate --timeout 2h; the next run starts again safely)", what, err)
			}
			return fmt.Errorf("migrate: rebuild decision_records: %s: %w", what, err)
		}
		return nil
	}
	count := func(table string) (uint64, error) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+s.t(table)).Scan(&n); err != nil {
			return 0, fmt.Errorf("migrate: rebuild decision_records: count %s: %w", table, err)
		}
		return n, nil
	}
	tables, err := existingTables(ctx, conn, s.db)
	if err != nil {
		return "", err
	}
	if tables[TableProgress] {
		var recent uint64
		q := "SELECT count() FROM " + s.t(TableProgress) + " WHERE inserted_at > now() - " + fmt.Sprint(int(storeQuietSince/time.Second))
		if err := conn.QueryRow(ctx, q).Scan(&recent); err != nil {
			return "", fmt.Errorf("migrate: rebuild decision_records: read store_progress: %w", err)
		}
		if recent > 0 {
			return "", fmt.Errorf("migrate: decision_records must be rebuilt (new layout), but a store inserted into it in the last %s: stop every `auditline store`, then run migrate again (nothing was changed)", storeQuietSince)
		}
	}
	newT, oldT := TableDecisions+rebuildSuffix, TableDecisions+oldSuffix
	start := time.Now()

	if !tables[oldT] { // else an earlier rebuild got past the swap: finish it
		have, err := tableColumns(ctx, conn, s.db, TableDecisions)
		if err != nil {
			return "", err
		}
		if err := exec("drop leftover", "DROP TABLE IF EXISTS "+s.t(newT)); err != nil {
			return "", err
		}
		if err := exec("create", s.decisionRecordsDDLAs(newT)); err != nil {
			return "", err
		}
		want, err := tableColumns(ctx, conn, s.db, newT)
		if err != nil {
			return "", err
		}
		var extra []string
		for c := range have {
			if _, ok := want[c]; !ok {
				extra = append(extra, c)
			}
		}
		if len(extra) > 0 {
			slices.Sort(extra)
			_ = exec("drop", "DROP TABLE IF EXISTS "+s.t(newT))
			return "", fmt.Errorf("migrate: decision_records has columns record.Decision no longer derives (%s): a rebuild would drop them; nothing was changed (copy them elsewhere and drop them first)", strings.Join(extra, ", "))
		}
		cols := copyColumns(have, want)
		if err := exec("copy rows", "INSERT INTO "+s.t(newT)+" ("+cols+") SELECT "+cols+" FROM "+s.t(TableDecisions)); err != nil {
			return "", err
		}
		if err := rebuildInterrupt("copied"); err != nil {
			return "", err
		}
		nOld, err := count(TableDecisions)
		if err != nil {
			return "", err
		}
		nNew, err := count(newT)
		if err != nil {
			return "", err
		}
		if nNew != nOld {
			return "", fmt.Errorf("migrate: rebuild decision_records: copied %d rows of %d; decision_records is unchanged, %s%s holds the partial copy", nNew, nOld, s.db, "."+newT)
		}
		mvs, _ := s.decisionViews()
		for _, mv := range mvs {
			if err := exec("drop materialized view", "DROP TABLE IF EXISTS "+mv); err != nil {
				return "", err
			}
		}
		if err := exec("swap", "RENAME TABLE "+s.t(TableDecisions)+" TO "+s.t(oldT)+", "+s.t(newT)+" TO "+s.t(TableDecisions)); err != nil {
			return "", err
		}
		if err := rebuildInterrupt("swapped"); err != nil {
			return "", err
		}
	}
	_, create := s.decisionViews()
	for _, q := range create {
		if err := exec("create materialized view", q); err != nil {
			return "", err
		}
	}
	// Rows that reached the old table after the copy (a store that started
	// meanwhile): copy those the new table lacks, by Kafka position.
	have, err := tableColumns(ctx, conn, s.db, oldT)
	if err != nil {
		return "", err
	}
	want, err := tableColumns(ctx, conn, s.db, TableDecisions)
	if err != nil {
		return "", err
	}
	cols := copyColumns(have, want)
	pos := "(kafka_topic, kafka_partition, kafka_offset, version)"
	if err := exec("copy late rows", "INSERT INTO "+s.t(TableDecisions)+" ("+cols+") SELECT "+cols+" FROM "+s.t(oldT)+
		" WHERE "+pos+" NOT IN (SELECT "+strings.Trim(pos, "()")+" FROM "+s.t(TableDecisions)+")"); err != nil {
		return "", err
	}
	nOld, err := count(oldT)
	if err != nil {
		return "", err
	}
	nNew, err := count(TableDecisions)
	if err != nil {
		return "", err
	}
	if nNew < nOld {
		return "", fmt.Errorf("migrate: rebuild decision_records: the new table has %d rows, the old one %d; the old one is kept as %s.%s", nNew, nOld, s.db, oldT)
	}
	if err := exec("drop old table", "DROP TABLE IF EXISTS "+s.t(oldT)); err != nil {
		return "", err
	}
	log.Info("decision_records rebuilt in the current layout", "rows", nNew, "took", time.Since(start).Round(time.Millisecond))
	return fmt.Sprintf("rebuild decision_records (%d rows)", nNew), nil
}

// rebuildInterrupt is called at the steps where a rebuild may be cut short
// (a killed migrate): "copied" (the new table is filled, nothing swapped) and
// "swapped" (the new table is decision_records, the materialized views are
// not created again yet). Tests make it fail to check that the next migrate
// finishes the job.
var rebuildInterrupt = func(step string) error { return nil }

// copyColumns lists, quoted and sorted, the columns of want that have also
// has (the others take their defaults); INSERT … SELECT matches them by
// position, so both sides use this one list.
func copyColumns(have, want map[string]string) string {
	var cols []string
	for c := range want {
		if _, ok := have[c]; ok {
			cols = append(cols, quote(c))
		}
	}
	slices.Sort(cols)
	return strings.Join(cols, ", ")
}
