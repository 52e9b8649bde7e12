package testenv

import (
	"regexp"
	"strings"
)

// UnnamedSubqueries returns every subquery of sql that follows FROM or JOIN
// without an alias, each as its first 60 characters. Current ClickHouse
// releases refuse a subquery in a JOIN that has no alias
// (joined_subquery_requires_alias = 1 by default since 20.x, code 206) while
// 18.16 accepts it, so a query tested on 18.16 alone can break every modern
// server; our SQL names every FROM/JOIN subquery, and tests hold every query
// text to that with this check. String literals and comments are skipped.
func UnnamedSubqueries(sql string) []string {
	type open struct {
		at      int
		checked bool // a subquery right after FROM or JOIN
	}
	var stack []open
	var out []string
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i)
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(sql)
			}
		case c == '(':
			prev := strings.ToUpper(lastWord(sql[:i]))
			sub := selectStart.MatchString(sql[i+1:])
			stack = append(stack, open{at: i, checked: sub && (prev == "FROM" || prev == "JOIN")})
		case c == ')':
			if len(stack) == 0 {
				continue
			}
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if o.checked && !named(sql[i+1:]) {
				out = append(out, snippet(sql[o.at:]))
			}
		}
	}
	return out
}

var (
	selectStart = regexp.MustCompile(`^\s*(?i:SELECT|WITH)\b`)
	aliasAfter  = regexp.MustCompile(`^\s+(?:(?i:AS)\s+)?([A-Za-z_][A-Za-z0-9_]*)`)
)

// notAlias are the words that may follow a FROM/JOIN subquery and are not
// its name.
var notAlias = map[string]bool{
	"ARRAY": true, "LEFT": true, "RIGHT": true, "FULL": true, "INNER": true, "CROSS": true, "ANY": true, "ALL": true,
	"GLOBAL": true, "SEMI": true, "ANTI": true, "ASOF": true, "JOIN": true, "USING": true, "ON": true, "WHERE": true,
	"PREWHERE": true, "GROUP": true, "ORDER": true, "LIMIT": true, "HAVING": true, "FINAL": true, "SAMPLE": true,
	"UNION": true, "SETTINGS": true, "FORMAT": true, "INTO": true, "WITH": true, "PASTE": true,
}

func named(rest string) bool {
	m := aliasAfter.FindStringSubmatch(rest)
	return m != nil && !notAlias[strings.ToUpper(m[1])]
}

func lastWord(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	j := len(s)
	for j > 0 {
		c := s[j-1]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			j--
			continue
		}
		break
	}
	return s[j:]
}

// skipQuoted returns the index of the quote that closes the one at i
// (backslash escapes, as ClickHouse reads them), or the end of s.
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			return j
		}
	}
	return len(s)
}

func snippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

// tableAfter is the table a FROM or JOIN reads: a name, optionally
// qualified by a database (db.t, `db`.`t`, {db}.t), not a subquery.
var tableAfter = regexp.MustCompile("^\\s+((?:`[^`]+`|\\{[a-z]+\\}|[A-Za-z_][A-Za-z0-9_$]*)\\.)?(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)")

// TablesRead returns the tables and views sql reads by name after FROM or
// JOIN (not ARRAY JOIN, which reads a column), in order, without their
// database; a name in database system comes back as "system.<name>".
// Quoted strings and comments are skipped. Tests use it to check SQL that
// is not Go (docs/sql.md, Grafana panels) against store.Names.
func TablesRead(sql string) []string {
	var out []string
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' || c == '"':
			i = skipQuoted(sql, i)
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(sql)
			}
		case c == 'F' || c == 'f' || c == 'J' || c == 'j':
			w := strings.ToUpper(lastWord(sql[:min(len(sql), i+4)]))
			if i > 0 && isWordByte(sql[i-1]) || (w != "FROM" && w != "JOIN") || i+4 < len(sql) && isWordByte(sql[i+4]) {
				continue
			}
			if w == "JOIN" && strings.ToUpper(lastWord(sql[:i])) == "ARRAY" {
				continue
			}
			m := tableAfter.FindStringSubmatch(sql[i+4:])
			if m == nil {
				continue
			}
			name := strings.Trim(m[2], "`")
			if db := strings.Trim(strings.TrimSuffix(m[1], "."), "`"); db == "system" {
				name = "system." + name
			}
			out = append(out, name)
			i += 4 + len(m[0]) - 1
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
