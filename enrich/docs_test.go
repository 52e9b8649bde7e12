package enrich

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditline/auditline/enrich/record"
)

// TestDecisionRecordDocumented: docs/decision-record.md has a row for every
// field of record.Decision, so the auditor's reference cannot fall behind
// the type.
func TestDecisionRecordDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "decision-record.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var check func(prefix string, fs []record.Field)
	check = func(prefix string, fs []record.Field) {
		for _, f := range fs {
			path := prefix + f.JSON
			if !strings.Contains(doc, "| `"+path+"` |") {
				t.Errorf("docs/decision-record.md has no row for `%s`", path)
			}
			if f.Kind == record.KindStructList {
				check(path+"[].", f.Elem)
			}
		}
	}
	check("", record.Fields())
}
