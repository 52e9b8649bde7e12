package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
)

func TestFieldNamesUnique(t *testing.T) {
	var check func(prefix string, fs []Field)
	check = func(prefix string, fs []Field) {
		seen := map[string]string{}
		for _, f := range fs {
			if prev, ok := seen[f.Name]; ok {
				t.Errorf("%scolumn %q from both %s and %s", prefix, f.Name, prev, f.JSON)
			}
			seen[f.Name] = f.JSON
			if f.Kind == KindStructList {
				check(f.Name+".", f.Elem)
			}
		}
	}
	check("", Fields())
}

func TestID(t *testing.T) {
	// printf 'auditline.decision.v1\0b980db26-9512-45cc-b1da-c511a363b83f' | sha256sum | cut -c1-32
	if got, want := ID("b980db26-9512-45cc-b1da-c511a363b83f"), "c7bedbfbc094c6edbcb5a6ebfcf23484"; got != want {
		t.Fatalf("ID = %q, want %s", got, want)
	}
	// Keys past ID's stack buffer hash the same way.
	for _, n := range []int{0, 1, 105, 106, 107, 1000} {
		key := strings.Repeat("k", n)
		sum := sha256.Sum256([]byte("auditline.decision.v1\x00" + key))
		if got, want := ID(key), hex.EncodeToString(sum[:16]); got != want {
			t.Fatalf("ID of a %d-byte key = %s, want %s", n, got, want)
		}
	}
	if ID("a") == ID("b") {
		t.Fatal("distinct keys share an id")
	}
}

func TestTimeJSON(t *testing.T) {
	tm := TimeOf(time.Date(2025, 11, 22, 10, 41, 7, 512_900_000, time.UTC))
	b, err := json.Marshal(tm)
	if err != nil || string(b) != `"2025-11-22T10:41:07.512Z"` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var back Time
	if err := json.Unmarshal(b, &back); err != nil || back != tm {
		t.Fatalf("round trip = %v, %v", back, err)
	}
	if b, _ := json.Marshal(Time(0)); string(b) != "null" {
		t.Fatalf("zero = %s", b)
	}
	if got := TimeFromSeconds(1763807445.118402); got.String() != "2025-11-22T10:30:45.118Z" {
		t.Fatalf("TimeFromSeconds = %s", got)
	}
}

func TestCanonicalIsJCS(t *testing.T) {
	f := 12.5
	d := Decision{SchemaVersion: SchemaVersion, RecordID: ID("k"), Version: 1, Completeness: Complete}
	d.Budget.Key.Spend = &f
	c, err := d.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	s := string(c)
	if strings.Contains(s, " ") || strings.Contains(s, "\n") {
		t.Fatalf("canonical bytes contain whitespace: %s", s)
	}
	// JCS sorts keys: "budget" precedes "completeness".
	if strings.Index(s, `"budget"`) > strings.Index(s, `"completeness"`) {
		t.Fatalf("keys not sorted: %s", s)
	}
	c2, _ := d.Canonical()
	if string(c2) != s {
		t.Fatal("canonical bytes differ between calls")
	}
}

// TestTimeJSONv2: encoding/json/v2 decodes a Time through UnmarshalJSONFrom
// as encoding/json does through UnmarshalJSON.
func TestTimeJSONv2(t *testing.T) {
	for _, in := range []string{`"2025-11-22T10:41:07.512Z"`, `null`, `"2025-11-22T11:41:07.5129+01:00"`} {
		var a, b Time
		errA := json.Unmarshal([]byte(in), &a)
		errB := jsonv2.Unmarshal([]byte(in), &b)
		if errA != nil || errB != nil || a != b {
			t.Errorf("%s: encoding/json %v (%v), v2 %v (%v)", in, a, errA, b, errB)
		}
	}
	for _, in := range []string{`"yesterday"`, `12`, `{}`, `[]`, `true`} {
		var a, b Time
		if json.Unmarshal([]byte(in), &a) == nil || jsonv2.Unmarshal([]byte(in), &b) == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}
