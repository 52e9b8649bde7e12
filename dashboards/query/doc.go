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
//     parameters), and the few identifiers that vary (a breakdown dimension,
//     the bucket width) come from fixed tables in this package.
//   - Counts are exact over the latest version of each record. We read with
//     FINAL: on ClickHouse 18.16 with 1M rows it was 2.5× faster than
//     argMax(…, version) GROUP BY record_id and 2.6× faster than
//     LIMIT 1 BY record_id (see docs/dashboards.md for the figures), and it
//     stays exact before background merges catch up.
//   - Lists are bounded (LIMIT) and paged by a keyset on the table's sort
//     order (start_time, record_id), never by OFFSET, so page 1000 costs what
//     page 1 costs.
package query
