package store

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/auditline/auditline/deploy/testenv"
)

// TestNames: the views are exactly the View constants, every name is
// unique, and every table or view the views' SQL reads is one of Names —
// including the ledger's, whose SQL lives in package ledger and cannot use
// the constants.
func TestNames(t *testing.T) {
	names := Names()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] || !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(n) {
			t.Errorf("name %q repeated or not a plain identifier", n)
		}
		seen[n] = true
	}
	var views []string
	for _, v := range Views() {
		views = append(views, v.Name)
		for _, r := range testenv.TablesRead(v.SQL) {
			if !slices.Contains(names, r) {
				t.Errorf("view %s reads %q, which is not in store.Names", v.Name, r)
			}
		}
	}
	want := []string{ViewLatest, ViewAttempts, ViewGuardrails, ViewNearMissesDaily, ViewRoutingDaily, ViewProviderAttemptsDaily,
		ViewGuardrailOutcomesDaily, ViewBudgetProximity, ViewSpendDaily, ViewSampleQueue, ViewEmitterSequences, ViewSequenceGaps, ViewGatewayConfigs}
	if !slices.Equal(views, want) {
		t.Errorf("views %v, want the View constants %v", views, want)
	}
}

// TestNamesInDocs: docs/sql.md reads only tables and views the store
// creates (by their constants' names), or system tables. TestDocsSQL runs
// the same queries on the real schema.
func TestNamesInDocs(t *testing.T) {
	names := Names()
	n := 0
	for _, q := range docQueries(t) {
		for _, r := range testenv.TablesRead(q) {
			n++
			if !slices.Contains(names, r) && !strings.HasPrefix(r, "system.") {
				t.Errorf("docs/sql.md reads %q, which is not in store.Names:\n%s", r, q)
			}
		}
	}
	if n < 10 {
		t.Fatalf("found %d table names in docs/sql.md; the parser is broken", n)
	}
}
