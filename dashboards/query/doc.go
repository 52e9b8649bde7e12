// Package query holds every read the dashboards make: one method per page, each
// answering everything that page shows, against ClickHouse's decision_records
// table (one row per record version, ReplacingMergeTree; see docs/sql.md).
//
// Guarantees:
//
//   - Tenant scoping is part of the Filter, not of the caller's good manners:
//     every query built here carries the tenant predicate, and a Filter with
//     no tenant and no explicit AllTenants is refused (ErrNoTenant).
//   - No user input is ever spliced into SQL text. Values travel as bound
//     parameters (clickhouse-go quotes them; 18.16 has no server-side query
//     parameters), and the only identifiers that vary (database and table)
//     are validated plain identifiers from the configuration.
//   - Counts and lists are over the latest version of each record, exact
//     before background merges catch up, and a record a later version moved
//     to another tenant leaves the first tenant's results. Not with FINAL: on
//     18.16 FINAL merges on read in one thread and was several times slower
//     on 1M rows in fresh parts; latestJoin joins the rows read to the
//     highest version of the few amended records instead (figures in
//     docs/dashboards.md).
//   - A page is a few scans run concurrently, not one query per widget: the
//     near-miss page is two GROUP BYs whatever it shows.
//   - Three layers, each testable alone: SQL text is built in clickhouse.go
//     and filter.go; every query is read through one helper, each (scan.go),
//     with its row type naming its columns in SELECT order; what the grouped
//     rows add up to is computed by pure functions (aggregate.go), tested on
//     hand-written rows.
//   - Lists are bounded (LIMIT) and paged by a keyset on the table's sort
//     order (start_time, record_id), never by OFFSET, so page 1000 costs what
//     page 1 costs; one record is read through decision_versions and the
//     primary index, a granule per version.
package query
