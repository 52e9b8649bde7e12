// Package grafana holds the Grafana dashboards (near-miss.json, sampling.json)
// for the ClickHouse data source (grafana-clickhouse-datasource): the same
// panels as `auditline dashboard`, for teams that live in Grafana. The Go code
// here is only the test that keeps them honest: valid JSON, sane layout, and
// every panel's SQL run against the real ClickHouse with Grafana's macros
// substituted. See README.md.
package grafana
