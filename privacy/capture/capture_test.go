package capture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const marker = "ZEBRA-MARKER-7731"

// withMarkers returns a LiteLLM payload with the marker in every content
// member the issue names: prompt, response, client headers, guardrail text.
func withMarkers(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "ingest", "testdata", "examples", "01_success_plain_openai.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["messages"] = []any{map[string]any{"role": "user", "content": "prompt " + marker + " ann@example.com"}}
	m["response"] = map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": "answer " + marker}}}}
	md := m["metadata"].(map[string]any)
	md["requester_custom_headers"] = map[string]any{"x-secret-header": marker}
	m["guardrail_information"] = map[string]any{"guardrail_response": "matched " + marker}
	m["error_str"] = "provider said: bad input from bob@example.com"
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBodyPolicies(t *testing.T) {
	in := withMarkers(t)
	for _, p := range []Policy{Hash, None} {
		out := New(p).Body(in)
		if bytes.Contains(out, []byte(marker)) {
			t.Errorf("%s: marker kept:\n%s", p, out)
		}
		if bytes.Contains(out, []byte("bob@example.com")) {
			t.Errorf("%s: e-mail in error text kept", p)
		}
		if !json.Valid(out) {
			t.Errorf("%s: not JSON:\n%s", p, out)
		}
		var m map[string]any
		_ = json.Unmarshal(out, &m)
		if m["litellm_call_id"] == nil || m["model"] == nil || m["metadata"].(map[string]any)["user_api_key_user_id"] == nil {
			t.Errorf("%s: non-content members lost", p)
		}
		if s, _ := m["messages"].(string); !strings.HasPrefix(s, "sha256:") {
			t.Errorf("%s: messages = %v, want sha256:<hex>", p, m["messages"])
		}
	}
	if out := New(Full).Body(in); !bytes.Equal(out, in) {
		t.Error("full changed the body")
	}
	red := New(Redacted).Body(in)
	if !json.Valid(red) || bytes.Contains(red, []byte("ann@example.com")) || !bytes.Contains(red, []byte(marker)) {
		t.Errorf("redacted: want content kept with the e-mail masked:\n%s", red)
	}
}

// TestBodyPreservesBytes: outside replaced values the bytes are unchanged
// (member order and Python's spacing, which the gateway_configs view reads).
func TestBodyPreservesBytes(t *testing.T) {
	in := []byte(`{"seq": 7, "config_hash": "sha256:ab", "config": {"headers": {"Authorization": "Bearer x"}, "model_list": [1, 2]}, "reason": "start"}`)
	got := string(New(Hash).Body(in))
	sum := sha256.Sum256([]byte(`{"Authorization": "Bearer x"}`))
	want := `{"seq": 7, "config_hash": "sha256:ab", "config": {"headers": "sha256:` + hex.EncodeToString(sum[:]) + `", "model_list": [1, 2]}, "reason": "start"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	plain := []byte(`{"event_id":"e1","decision":"allow","risk_score":0.2}`)
	if out := New(Hash).Body(plain); &out[0] != &plain[0] {
		t.Error("a body without content was copied")
	}
}

func TestBodyCases(t *testing.T) {
	c := New(Hash)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"null content", `{"messages":null}`, `{"messages":null}`},
		{"array of events", `[{"id":1,"prompt":"x"},{"id":2}]`, `[{"id":1,"prompt":"sha256:` + sum(`"x"`) + `"},{"id":2}]`},
		{"legacy python str", `{"metadata":"{'requester_custom_headers': {'x-a': 'b'}}","id":"1"}`,
			`{"metadata":"sha256:` + sum(`"{'requester_custom_headers': {'x-a': 'b'}}"`) + `","id":"1"}`},
		{"json in a string", `{"m":"{\"messages\":[1]}"}`, `{"m":"sha256:` + sum(`"{\"messages\":[1]}"`) + `"}`},
		{"escaped name", `{"m\u0065ssages":"secret","id":"1"}`, `{"m\u0065ssages":"sha256:` + sum(`"secret"`) + `","id":"1"}`},
		{"escaped identity-free body", `{"note":"a\nb"}`, `{"note":"a\nb"}`},
		{"word in a string", `{"note":"see the messages tab"}`, `{"note":"see the messages tab"}`},
		{"error object", `{"error":{"code":429}}`, `{"error":"sha256:` + sum(`{"code":429}`) + `"}`},
		{"error number", `{"error":5}`, `{"error":5}`},
		{"error masked", `{"error_str":"a@b.com said no"}`, `{"error_str":"[EMAIL] said no"}`},
		{"duplicate names", `{"messages":"a","messages":"b"}`, `{"messages":"sha256:` + sum(`"a"`) + `","messages":"sha256:` + sum(`"b"`) + `"}`},
		{"not json", `prompt: hello`, string(Stub(Hash, []byte(`prompt: hello`)))},
		{"truncated", `{"messages":"abc`, string(Stub(Hash, []byte(`{"messages":"abc`)))},
		{"two values", `{"a":1} {"messages":"x"}`, string(Stub(Hash, []byte(`{"a":1} {"messages":"x"}`)))},
		{"empty", ``, string(Stub(Hash, nil))},
	} {
		if got := string(c.Body([]byte(tc.in))); got != tc.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if got := string(New(Redacted).Body([]byte("not json: a@b.com"))); got != "not json: [EMAIL]" {
		t.Errorf("redacted non-JSON: %s", got)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestParse(t *testing.T) {
	for _, s := range []string{"full", "redacted", "hash", "none"} {
		if _, err := Parse(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := Parse("Hash"); err == nil {
		t.Error("Parse(Hash) accepted")
	}
}

// FuzzBody: under hash, any JSON body stays JSON, keeps no content member's
// value, and the output is a pure function of the input.
func FuzzBody(f *testing.F) {
	f.Add([]byte(`{"messages":[{"content":"hi"}],"id":"x"}`))
	f.Add([]byte(`[{"response":{}},{"error":"a@b.c"}]`))
	f.Add([]byte(`{"metadata":"{'headers': 1}"}`))
	f.Add([]byte("\xff{"))
	c := New(Hash)
	f.Fuzz(func(t *testing.T, b []byte) {
		out := c.Body(b)
		if !bytes.Equal(out, c.Body(b)) {
			t.Fatal("not deterministic")
		}
		if again := c.Body(out); !bytes.Equal(again, out) {
			t.Fatalf("a copy of a copy differs:\n%q\n%q", out, again)
		}
		if json.Valid(b) && !json.Valid(out) {
			t.Fatalf("valid JSON became invalid:\n%q\n%q", b, out)
		}
		if !json.Valid(b) && !bytes.Equal(out, Stub(Hash, b)) {
			if _, ok := c.rewrite(b); !ok {
				t.Fatalf("invalid JSON not stubbed: %q -> %q", b, out)
			}
		}
	})
}
