package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migration is one versioned schema change. Its statements are idempotent
// (IF NOT EXISTS), so a migration interrupted half-way is simply run again.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the versioned migrations for database db on server srv.
// Never edit a released migration: append a new one. (Columns added to
// record.Decision need no migration; see Migrate.)
func Migrations(db string, srv Server) []Migration { return schema{db: db, srv: srv}.migrations() }

func (s schema) migrations() []Migration {
	srv := s.srv
	out := []Migration{
		{1, "create " + TableDecisions, []string{s.decisionRecordsDDL()}},
		{2, "create " + TableRawEvents, []string{s.rawEventsDDL()}},
		{3, "create " + TableRejected, []string{s.rejectedDDL()}},
		{4, "create " + TableProgress + " and its materialized views", s.progressDDL()},
		{5, "create " + TableVersions + ", " + TableSuperseded + " and their materialized views", s.versionsDDL()},
	}
	if srv.DedupToken() {
		// Only where it applies, so that a database created on an older
		// server gets it at the first migrate after the server's upgrade.
		out = append(out, Migration{6, "deduplication window on the materialized views' tables", s.viewTargetsDedupDDL()})
	}
	return out
}

// Plan is every statement Migrate would run on an empty database, in order:
// what `auditline migrate --dry-run` prints.
func Plan(db string, srv Server) []string {
	s := schema{db: db, srv: srv}
	out := []string{"CREATE DATABASE IF NOT EXISTS " + quote(db), s.migrationsDDL()}
	for _, m := range Migrations(db, srv) {
		out = append(out, m.Statements...)
	}
	for _, v := range Views() {
		out = append(out, s.viewDDL(v)...)
	}
	return out
}

func (s schema) migrationsDDL() string {
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s
(
    `+"`version`"+` UInt32,
    `+"`name`"+` String,
    `+"`checksum`"+` String,
    `+"`applied_at`"+` DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (version, name)`, s.t(TableMigrations))
}

// Migrate brings database db up to date, and returns what it did (nothing
// when the schema was current). It is idempotent; run one at a time.
//
//  1. CREATE DATABASE and schema_migrations.
//  2. Every versioned migration not yet recorded, in order; each recorded
//     with its version, name and the SHA-256 of its statements.
//  3. Layout: when decision_records' engine, sorting key, settings or
//     column types differ from what this server gets (decisionLayout), the
//     table is rebuilt (rebuild.go; refused while a store is writing).
//  4. Columns: every column derived from record.Fields that decision_records
//     lacks is added (ALTER TABLE … ADD COLUMN … AFTER, recorded as version
//     0). A column whose type differs is an error: changing a type needs a
//     hand-written migration, never a silent rewrite.
//  5. Views: each view whose SQL checksum differs from the last recorded one
//     (or that is missing) is dropped and created again.
func Migrate(ctx context.Context, conn driver.Conn, db string, srv Server, log *slog.Logger) ([]string, error) {
	return schema{db: db, srv: srv}.migrate(ctx, conn, log)
}

func (s schema) migrate(ctx context.Context, conn driver.Conn, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.Default()
	}
	db := s.db
	var done []string
	exec := func(what, q string) error {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("migrate: %s: %w", what, err)
		}
		return nil
	}
	if err := exec("create database", "CREATE DATABASE IF NOT EXISTS "+quote(db)); err != nil {
		return nil, err
	}
	if err := exec("create "+TableMigrations, s.migrationsDDL()); err != nil {
		return nil, err
	}
	applied, err := appliedMigrations(ctx, conn, s)
	if err != nil {
		return nil, err
	}
	// INSERT … VALUES through Exec hangs on 18.16 (the server waits for a
	// data block), so records go through the batch API like every insert.
	record := func(version int, name, checksum string) error {
		if err := s.recordApplied(ctx, conn, version, name, checksum); err != nil {
			return fmt.Errorf("migrate: record %s: %w", name, err)
		}
		return nil
	}

	created := false // decision_records created by this run, in the current layout
	for _, m := range s.migrations() {
		if _, ok := applied[m.Name]; ok {
			continue
		}
		created = created || m.Version == 1
		for _, q := range m.Statements {
			if err := exec(m.Name, q); err != nil {
				return done, err
			}
		}
		if err := record(m.Version, m.Name, checksum(m.Statements...)); err != nil {
			return done, err
		}
		log.Info("migration applied", "version", m.Version, "name", m.Name)
		done = append(done, fmt.Sprintf("%d %s", m.Version, m.Name))
	}

	if layout := checksum(s.layoutSignature()); applied[layoutRecord] != layout {
		if !created {
			what, err := s.rebuildDecisions(ctx, conn, log)
			if err != nil {
				return done, err
			}
			done = append(done, what)
			clear(applied) // re-create every view over the new table
		}
		if err := record(0, layoutRecord, layout); err != nil {
			return done, err
		}
	}

	added, err := s.addMissingColumns(ctx, conn)
	if err != nil {
		return done, err
	}
	for _, q := range added {
		if err := record(0, "add column: "+q.name, checksum(q.sql)); err != nil {
			return done, err
		}
		log.Info("column added", "table", TableDecisions, "column", q.name)
		done = append(done, "add column "+q.name)
	}

	existing, err := existingTables(ctx, conn, db)
	if err != nil {
		return done, err
	}
	// A view's checksum covers the table's columns too: `SELECT *` views fix
	// their columns when created, so an added column re-creates them.
	colSig := columnSignature()
	for _, v := range Views() {
		stmts := s.viewDDL(v)
		name := "view " + v.Name
		sum := checksum(append(stmts, colSig)...)
		if applied[name] == sum && existing[v.Name] {
			continue
		}
		for _, q := range stmts {
			if err := exec(name, q); err != nil {
				return done, err
			}
		}
		if err := record(0, name, sum); err != nil {
			return done, err
		}
		log.Info("view created", "view", v.Name)
		done = append(done, "create view "+v.Name)
	}
	return done, nil
}

// appliedMigrations maps each recorded name to its latest checksum.
// recordApplied adds a row to schema_migrations. Its applied_at is now, or a
// second after the name's latest row when that is not earlier: applied_at
// has whole seconds, and appliedMigrations takes the checksum of the latest
// row (argMax), which two rows of one second would leave to chance — a
// layout recorded in the same second as the one it replaces was read back
// as the old one (TestRebuildLayout failed that way on a busy machine).
func (s schema) recordApplied(ctx context.Context, conn driver.Conn, version int, name, checksum string) error {
	t := s.t(TableMigrations)
	return conn.Exec(ctx, "INSERT INTO "+t+" (version, name, checksum, applied_at) SELECT toUInt32(?), ?, ?, greatest(now(), (SELECT max(applied_at) FROM "+t+" WHERE name = ?) + 1)",
		uint32(version), name, checksum, name)
}

func appliedMigrations(ctx context.Context, conn driver.Conn, s schema) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT name, argMax(checksum, applied_at) FROM "+s.t(TableMigrations)+" GROUP BY name")
	if err != nil {
		return nil, fmt.Errorf("migrate: read %s: %w", TableMigrations, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, sum string
		if err := rows.Scan(&name, &sum); err != nil {
			return nil, fmt.Errorf("migrate: read %s: %w", TableMigrations, err)
		}
		out[name] = sum
	}
	return out, rows.Err()
}

func existingTables(ctx context.Context, conn driver.Conn, db string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = ?", db)
	if err != nil {
		return nil, fmt.Errorf("migrate: list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("migrate: list tables: %w", err)
		}
		out[n] = true
	}
	return out, rows.Err()
}

type alter struct{ name, sql string }

// addMissingColumns adds the derived columns decision_records lacks, each
// after its predecessor in the derived order.
func (s schema) addMissingColumns(ctx context.Context, conn driver.Conn) ([]alter, error) {
	have, err := tableColumns(ctx, conn, s.db, TableDecisions)
	if err != nil {
		return nil, err
	}
	var out []alter
	var typeErrs []string
	prev := ""
	l := s.lay()
	for _, c := range decisionColumns() {
		t, ok := have[c.Name]
		switch {
		case ok && normType(t) != normType(l.colType(c.Column)):
			typeErrs = append(typeErrs, fmt.Sprintf("%s is %s, want %s", c.Name, t, l.colType(c.Column)))
		case !ok:
			q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", s.t(TableDecisions), l.colDef(c.Column))
			if prev != "" {
				q += " AFTER " + quote(prev)
			}
			if err := conn.Exec(ctx, q); err != nil {
				return out, fmt.Errorf("migrate: add column %s: %w", c.Name, err)
			}
			out = append(out, alter{c.Name, q})
		}
		prev = c.Name
	}
	if len(typeErrs) > 0 {
		return out, fmt.Errorf("migrate: %s columns differ from record.Decision (write a migration): %s",
			TableDecisions, strings.Join(typeErrs, "; "))
	}
	return out, nil
}

// tableColumns maps column name to type.
func tableColumns(ctx context.Context, conn driver.Conn, db, table string) (map[string]string, error) {
	rows, err := conn.Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", db, table)
	if err != nil {
		return nil, fmt.Errorf("list columns of %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, fmt.Errorf("list columns of %s: %w", table, err)
		}
		out[n] = t
	}
	return out, rows.Err()
}

// normType makes type names comparable across server versions (18.16 lists
// DateTime('UTC') as DateTime(\'UTC\')).
func normType(t string) string { return strings.ReplaceAll(t, `\'`, `'`) }

// columnSignature lists decision_records' derived columns and types.
func columnSignature() string {
	var b strings.Builder
	for _, c := range decisionColumns() {
		b.WriteString(c.Name + " " + c.Type + "\n")
	}
	return b.String()
}

func checksum(stmts ...string) string {
	h := sha256.New()
	for _, s := range stmts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rawEventsTTLRecord names the raw_events TTL in schema_migrations.
const rawEventsTTLRecord = "raw_events ttl"

// SetRawEventsTTL gives raw_events the table TTL of store.raw_events_ttl
// (rows are deleted ttl after received_at; 0 removes a TTL set before) when
// it differs from the one recorded, and returns what it did. Run it after
// Migrate. A TTL needs ClickHouse 22.2+ here: on an older server a non-zero
// ttl is an error that says how to expire raw events by hand.
func SetRawEventsTTL(ctx context.Context, conn driver.Conn, db string, srv Server, ttl time.Duration) ([]string, error) {
	s := schema{db: db, srv: srv}
	clause := ""
	if ttl > 0 {
		clause = fmt.Sprintf("received_at + toIntervalSecond(%d)", int64(ttl/time.Second))
	}
	if !srv.AtLeast(modernSince) {
		if ttl > 0 {
			return nil, fmt.Errorf("store.raw_events_ttl: a table TTL needs ClickHouse %s or later (this server is %s); unset it and drop old months by hand: ALTER TABLE %s DROP PARTITION <yyyymm>", modernSince, srv, s.t(TableRawEvents))
		}
		return nil, nil
	}
	applied, err := appliedMigrations(ctx, conn, s)
	if err != nil {
		return nil, err
	}
	sum := checksum(clause)
	if applied[rawEventsTTLRecord] == sum || (clause == "" && applied[rawEventsTTLRecord] == "") {
		return nil, nil
	}
	q := "ALTER TABLE " + s.t(TableRawEvents) + " MODIFY TTL " + clause
	what := "raw_events TTL " + ttl.String()
	if clause == "" {
		q, what = "ALTER TABLE "+s.t(TableRawEvents)+" REMOVE TTL", "raw_events TTL removed"
	}
	if err := conn.Exec(ctx, q); err != nil {
		return nil, fmt.Errorf("migrate: %s: %w", what, err)
	}
	if err := s.recordApplied(ctx, conn, 0, rawEventsTTLRecord, sum); err != nil {
		return nil, fmt.Errorf("migrate: record %s: %w", what, err)
	}
	return []string{what}, nil
}
