package event

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// seeds adds every testdata file under enrich/testdata whose name matches.
func seeds(f *testing.F, match func(string) bool) {
	for _, dir := range []string{"litellm", "events"} {
		names, _ := filepath.Glob(filepath.Join("..", "testdata", dir, "*.json"))
		for _, n := range names {
			if match(filepath.Base(n)) {
				b, err := os.ReadFile(n)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
}

func FuzzParseLiteLLM(f *testing.F) {
	seeds(f, func(n string) bool { return n[0] == '0' || strings.HasPrefix(n, "litellm_") })
	f.Add([]byte(`{"id": NaN, "guardrail_information": {"masked_entity_count": {"A": Infinity}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLiteLLM(b)
		if err != nil {
			return
		}
		if l.Status == "" {
			t.Fatal("a payload without status")
		}
		for _, g := range l.Guardrails {
			if g.MaskedEntityCount < 0 {
				t.Fatal("negative masked count")
			}
		}
	})
}

func FuzzParseGateway(f *testing.F) {
	seeds(f, func(n string) bool { return strings.HasPrefix(n, "gateway_") })
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := ParseGateway(b); err == nil && (g.EventID == "" || g.RequestKey == "") {
			t.Fatal("accepted without ids")
		}
	})
}

func FuzzParseOversight(f *testing.F) {
	seeds(f, func(n string) bool { return strings.HasPrefix(n, "oversight_") })
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, err := ParseOversight(b); err == nil && o.Kind != KindSamplingControl && o.RequestKey == "" {
			t.Fatal("accepted without request_key")
		}
	})
}

func FuzzParseApproval(f *testing.F) {
	seeds(f, func(n string) bool { return strings.HasPrefix(n, "approval_") })
	f.Add([]byte(`{"event_id": "a", "request_key": "k", "kind": "approved", "approver": {"id": ""}, "required_approvals": 1e300}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseApproval(b)
		if err != nil {
			return
		}
		if a.EventID == "" || a.RequestKey == "" || (a.Kind != ApprovalRequested && a.Approver == "") || a.RequiredApprovals < 0 || a.RequiredApprovals > 10 {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func FuzzParseAccess(f *testing.F) {
	seeds(f, func(n string) bool { return strings.HasPrefix(n, "access_") })
	f.Add([]byte(`{"event_id": "a", "action": "export", "actor": {"id": "x"}, "target": {"version": -1e300}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAccess(b)
		if err != nil {
			return
		}
		if a.EventID == "" || a.Action == "" || a.Actor == "" || a.TargetVersion < 0 {
			t.Fatalf("accepted %+v", a)
		}
	})
}

func FuzzParseAlert(f *testing.F) {
	seeds(f, func(n string) bool { return strings.Contains(n, "alert") })
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseAlert(b, "")
		_, _ = ParseAlert(b, "key:abc")
	})
}

func FuzzPyLiteral(f *testing.F) {
	f.Add(`{'user_api_key_alias': 'svc', 'n': [1, 2.5, None, True], 't': ('a', "b\n")}`)
	f.Add(`'caf\xe9 \u00e9'`)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := pyLiteral(s)
		if err == nil {
			_ = fmtValue(v)
		}
	})
}

// fmtValue prints a pyLiteral result with sorted map keys.
func fmtValue(v any) string {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + fmtValue(t[k])
		}
		return "map[" + strings.Join(parts, " ") + "]"
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmtValue(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}

func FuzzParseStarted(f *testing.F) {
	seeds(f, func(n string) bool { return strings.HasPrefix(n, "plugin_") })
	f.Add([]byte(`{"event_id": "e/1", "request_key": "k", "emitter": "e", "seq": 1e300, "config_seq": NaN}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseStarted(b)
		if err != nil {
			return
		}
		if m.EventID == "" || m.RequestKey == "" || m.Emitter == "" || m.Seq < 1 {
			t.Fatalf("accepted a marker without its identity: %+v", m)
		}
	})
}

func FuzzParseAttempt(f *testing.F) {
	seeds(f, func(n string) bool { return strings.HasPrefix(n, "plugin_attempt") })
	f.Add([]byte(`{"event_id": "e/1", "request_key": "k", "emitter": "e", "seq": 1, "attempt": 1e300, "kind": "retry", "status": "failure", "start_time": "x", "fallback_depth": NaN}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAttempt(b)
		if err != nil {
			return
		}
		if a.EventID == "" || a.RequestKey == "" || a.Emitter == "" || a.Seq < 1 || a.N < 1 {
			t.Fatalf("accepted an attempt without its identity: %+v", a)
		}
		if a.Kind != AttemptFirst && a.Kind != AttemptRetry && a.Kind != AttemptFallback || a.Status != "success" && a.Status != "failure" {
			t.Fatalf("accepted kind %q status %q", a.Kind, a.Status)
		}
		if a.End < a.Start {
			t.Fatalf("end %d before start %d", a.End, a.Start)
		}
	})
}
