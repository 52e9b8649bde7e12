package store

import (
	"fmt"
	"regexp"
	"strings"
)

// ClusterPlan renders the schema for a ClickHouse cluster named cluster
// (remote_servers), from the same statements Plan gives one server:
//
//   - every table T becomes T_local, created ON CLUSTER on every node, with
//     the Replicated form of its engine (ZooKeeper or ClickHouse Keeper path
//     /clickhouse/tables/{shard}/<db>/T_local, replica {replica}: the macros
//     each node defines), and T itself becomes a Distributed table over
//     T_local, so the store, the dashboards and analysts use the same names
//     as on one server;
//   - decision_records and the two tables its materialized views fill
//     (decision_versions, decision_superseded) are sharded by
//     cityHash64(record_id): every version of a record lives on one shard,
//     so FINAL and the latest-version guard are correct shard by shard, and
//     the guard's subquery reads the shard-local decision_superseded_local
//     (a Distributed table inside IN would be refused by
//     distributed_product_mode = deny, and is not needed);
//   - materialized views read and write the _local tables (they fire on the
//     node that stores the block);
//   - views are created ON CLUSTER and read the Distributed tables.
//
// schema_migrations is left out: `auditline migrate` manages one server; a
// cluster is changed by applying the new cluster.sql (statements are
// idempotent). replicated = false keeps the plain engines and drops ON
// CLUSTER (which needs ZooKeeper): the shape a single test server without
// ZooKeeper can run, with a one-node cluster in remote_servers.
func ClusterPlan(db, cluster string, srv Server, replicated bool) ([]string, error) {
	s := schema{db: db, srv: srv}
	on := ""
	if replicated {
		on = " ON CLUSTER " + quote(cluster)
	}
	local := func(name string) string { return name + "_local" }
	tables := map[string]bool{}
	var out []string
	for _, q := range Plan(db, srv) {
		switch {
		case strings.HasPrefix(q, "CREATE DATABASE"):
			out = append(out, q+on)
		case strings.HasPrefix(q, "CREATE TABLE IF NOT EXISTS "+s.t(TableMigrations)):
			continue
		case strings.HasPrefix(q, "CREATE TABLE IF NOT EXISTS "):
			m := createTable.FindStringSubmatch(q)
			if m == nil {
				return nil, fmt.Errorf("cluster plan: unexpected table DDL:\n%s", q)
			}
			name, cols, engine, args, rest := m[1], m[2], m[3], m[4], m[5]
			tables[name] = true
			if replicated && !srv.AtLeast(commentsReplicate) {
				// A second replica of an 18.x table with column comments
				// refuses to attach ("Table structure in ZooKeeper is too
				// different from local table structure", code 122).
				cols = columnComment.ReplaceAllString(cols, "")
			}
			if replicated {
				path := sqlString(fmt.Sprintf("/clickhouse/tables/{shard}/%s/%s", db, local(name)))
				if args != "" {
					args = ", " + args
				}
				engine, args = "Replicated"+engine, path+", '{replica}'"+args
			}
			out = append(out,
				fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s\n(%s)\nENGINE = %s(%s)%s", s.t(local(name)), on, cols, engine, args, rest),
				fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s\nENGINE = Distributed(%s, %s, %s, %s)",
					s.t(name), on, s.t(local(name)), quote(cluster), quote(db), quote(local(name)), shardingKey(name)))
		case strings.HasPrefix(q, "CREATE MATERIALIZED VIEW IF NOT EXISTS "):
			m := createMV.FindStringSubmatch(q)
			if m == nil || !tables[unquote(m[2])] || !tables[unquote(m[4])] {
				return nil, fmt.Errorf("cluster plan: unexpected materialized view DDL:\n%s", q)
			}
			out = append(out, fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s%s TO %s AS%sFROM %s%s",
				m[1], on, s.t(local(unquote(m[2]))), m[3], s.t(local(unquote(m[4]))), m[5]))
		case strings.HasPrefix(q, "ALTER TABLE ") && strings.HasSuffix(q, " MODIFY SETTING "+dedupWindow):
			// Replicated tables deduplicate by default (replicated_deduplication_window);
			// the plain shape needs the window on its _local tables.
			m := alterSetting.FindStringSubmatch(q)
			if m == nil || !tables[m[1]] {
				return nil, fmt.Errorf("cluster plan: unexpected ALTER:\n%s", q)
			}
			if !replicated {
				out = append(out, fmt.Sprintf("ALTER TABLE %s MODIFY SETTING %s", s.t(local(m[1])), dedupWindow))
			}
		case strings.HasPrefix(q, "DROP TABLE IF EXISTS "):
			out = append(out, q+on)
		case strings.HasPrefix(q, "CREATE VIEW "):
			name, body, _ := strings.Cut(q, " AS\n")
			// The guard's subquery runs on each shard against its own rows.
			for _, from := range []string{s.t(TableSuperseded), quote(db) + "." + TableSuperseded} {
				body = strings.ReplaceAll(body, "FROM "+from+")", "FROM "+s.t(local(TableSuperseded))+")")
			}
			out = append(out, name+on+" AS\n"+body)
		default:
			return nil, fmt.Errorf("cluster plan: unexpected statement:\n%s", q)
		}
	}
	return out, nil
}

// commentsReplicate is the first release line on which Replicated tables keep
// column comments (18.16 refuses them on the second replica; see ClusterPlan).
var commentsReplicate = Server{19, 1}

var (
	// ` COMMENT '…'` after a column's type (sqlString escapes ' and \).
	columnComment = regexp.MustCompile(` COMMENT '(?:[^'\\]|\\.)*'`)
	// CREATE TABLE IF NOT EXISTS `db`.`name`\n(cols)\nENGINE = Engine[(args)]rest
	createTable = regexp.MustCompile("(?s)^CREATE TABLE IF NOT EXISTS `[^`]+`\\.`([^`]+)`\n\\((.*)\\)\nENGINE = ([A-Za-z]+)(?:\\(([^)]*)\\))?(\n.*)?$")
	// CREATE MATERIALIZED VIEW IF NOT EXISTS `db`.`mv` TO `db`.`target` AS<select>FROM `db`.`source`<rest>
	// ALTER TABLE `db`.`name` MODIFY SETTING …
	alterSetting = regexp.MustCompile("^ALTER TABLE `[^`]+`\\.`([^`]+)` MODIFY SETTING ")
	createMV     = regexp.MustCompile("(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS (`[^`]+`\\.`[^`]+`) TO `[^`]+`\\.(`[^`]+`) AS(.*?)FROM `[^`]+`\\.(`[^`]+`)(.*)$")
)

func unquote(s string) string { return strings.Trim(s, "`") }

// shardingKey places rows on shards: a record's versions, and the rows its
// materialized views derive, together; source events by request key.
func shardingKey(table string) string {
	switch table {
	case TableDecisions, TableVersions, TableSuperseded:
		return "cityHash64(record_id)"
	case TableRawEvents:
		return "cityHash64(key)"
	default:
		return "rand()"
	}
}
