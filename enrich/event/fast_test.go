package event

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/loadgen"
)

// generalLiteLLM is ParseLiteLLM's general path alone.
func generalLiteLLM(b []byte) (*wireLiteLLM, error) {
	var w wireLiteLLM
	if err := unmarshal(sanitize(b), &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// agree checks the fast path against the general one on b: when the fast
// path takes b, the general path must accept it and decode the same wire
// struct, hence the same LiteLLM. It reports whether the fast path took b.
func agree(t *testing.T, b []byte) bool {
	t.Helper()
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	var fast wireLiteLLM
	if !fastLiteLLM(b, &fast) {
		return false
	}
	gen, err := generalLiteLLM(b)
	if err != nil {
		t.Fatalf("fast path accepted what the general path refuses (%v):\n%.2000s", err, b)
	}
	if !reflect.DeepEqual(&fast, gen) {
		t.Fatalf("fast and general wire structs differ:\nfast    %+v\ngeneral %+v\ninput %.2000s", fast, *gen, b)
	}
	if f, g := fast.literal(), gen.literal(); !reflect.DeepEqual(f, g) {
		t.Fatalf("fast and general LiteLLM differ:\nfast    %+v\ngeneral %+v", f, g)
	}
	return true
}

// corpus returns every LiteLLM-like payload in the repository's test data:
// enrich's events and goldens, ingest's examples and events, the captured
// real LiteLLM bodies (split as ingest splits them) and the hostile corpus's
// files.
func corpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	add := func(name string, b []byte) {
		_, els, err := body.Split(b, false, 0)
		if err != nil {
			out[name] = b
			return
		}
		for i, e := range els {
			out[name+"#"+strconv.Itoa(i)] = e.Bytes(b)
		}
	}
	for _, pat := range []string{
		"../testdata/*/*.json", "../testdata/golden/*/*.json",
		"../../ingest/testdata/*/*.json", "../../deploy/litellm/captured/*.body",
		"../../tests/hostile/testdata/*.json",
	} {
		names, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			add(n, b)
		}
	}
	if len(out) < 100 {
		t.Fatalf("corpus: only %d payloads; test data moved?", len(out))
	}
	return out
}

// TestFastLiteLLMCorpus: on every payload of the test data and on 20,000
// payloads of every loadgen kind, the fast path decodes what the general
// path decodes, and it is the path taken for loadgen's payloads (else the
// speed-up would be lost without a failure).
func TestFastLiteLLMCorpus(t *testing.T) {
	taken := 0
	for _, b := range corpus(t) {
		if agree(t, b) {
			taken++
		}
	}
	if taken < 50 {
		t.Fatalf("the fast path took only %d corpus payloads", taken)
	}
	for seed := range int64(4) {
		g, err := loadgen.New(loadgen.Config{Seed: seed, Gateway: 0.2})
		if err != nil {
			t.Fatal(err)
		}
		n, fast := 0, 0
		for n < 5000 {
			r := g.Next()
			for _, b := range r.LiteLLM {
				n++
				if agree(t, b) {
					fast++
				} else if !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) {
					t.Fatalf("the fast path declined a loadgen payload:\n%s", b)
				}
			}
		}
		if fast < n*9/10 {
			t.Fatalf("seed %d: fast path for %d of %d loadgen payloads", seed, fast, n)
		}
	}
}

// TestFastLiteLLMEdges: inputs where the two paths could part, each checked
// for agreement (or for the fast path declining).
func TestFastLiteLLMEdges(t *testing.T) {
	for _, s := range []string{
		`{}`, `{"id":"a"}`, `{"ID":"a","Id":"b"}`, `{"id":"a","id":"b"}`, `{"metadata":{"tags":["a"],"tags":["b"]}}`,
		`{"i\u0064":"x"}`, `{"id":"\u00e9\ud83d\ude00"}`, `{"id":"\ud83d"}`, `{"id":"\udc00x"}`, `{"id":"a\u0000b"}`,
		"{\"id\":\"a\xffb\"}", "{\"id\":\"caf\xc3\xa9\"}", "{\"m\xff\":1}",
		`{"status_fields":null}`, `{"status_fields":{}}`, `{"status_fields":"x"}`, `{"status_fields":[1]}`,
		`{"error_information":{"error_budget_limit":"12.5","error_code":429}}`, `{"hidden_params":{"additional_headers":{"x-litellm-attempted-retries":"2"}}}`,
		`{"hidden_params":{"additional_headers":null}}`, `{"hidden_params":{"additional_headers":7}}`,
		`{"metadata":"{'user_api_key_alias': 'svc', 'tags': ['a']}"}`, `{"metadata":null}`, `{"metadata":[1,2]}`, `{"metadata":3}`,
		`{"messages":[ {"a" : 1} ],"response":{ }}`, `{"messages":null,"response":""}`, `{"guardrail_information":null}`,
		`{"guardrail_information":[{"guardrail_name":"g","masked_entity_count":{"EMAIL":2}}]}`,
		`{"request_tags":["a",null,"None","",3,{"x":1},"b"]}`, `{"request_tags":"x"}`, `{"stream":"True","cache_hit":1}`,
		`{"startTime":"2025-11-22 10:30:01.220118","endTime":1763805600.5}`, `{"startTime":"1763805600.25"}`,
		`{"response_cost":1e400,"cost":-0,"prompt_tokens":1E2,"completion_tokens":-1.5e-3}`,
		`{"response_cost":01}`, `{"response_cost":1.}`, `{"response_cost":.5}`, `{"response_cost":+1}`, `{"response_cost":-}`,
		`{"id":NaN}`, `{"x":Infinity}`, `{"id":"a"} `, `{"id":"a"}x`, `{"id":"a"}{}`, `{"id":"a",}`, `{"id" "a"}`, `{,}`,
		`{"a":[1,2,]}`, `{"a":[}`, `{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\t\"}",
		`{"auditline":{"emitter":"e","seq":3,"config_hash":"sha256:ab","config_seq":"2"}}`, `{"auditline":"x"}`,
		`{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`,
		`{"a":` + strings.Repeat(`{"b":`, 200) + `1` + strings.Repeat("}", 200) + `}`,
		"{\n\t\"id\" :\r \"a\" }", `{"usage":"Usage(completion_tokens=12, prompt_tokens=31)"}`,
		// Values copied out together (fast.go, strs) and those too long for it.
		`{"id":"None","model":"","call_type":12.5e3,"stream":true,"cache_hit":false,"trace_id":null,"status":"a\"b"}`,
		`{"id":"` + strings.Repeat("x", maxShared) + `","trace_id":"` + strings.Repeat("y", maxShared+1) + `","model":"m"}`,
		`{"request_tags":["` + strings.Repeat("t", maxShared+1) + `","None","","b","` + strings.Repeat("u", maxShared) + `"],"metadata":{"tags":["None"]}}`,
		`{"metadata":{"user_api_key_alias":"a","tags":["x","y"],"user_api_key_spend":"1.5"},"error_information":{"error_code":429,"error_message":"None"}}`,
	} {
		agree(t, []byte(s))
	}
}

// FuzzFastLiteLLM: the fast path agrees with the general path on every
// input (seeded with the whole corpus).
func FuzzFastLiteLLM(f *testing.F) {
	for _, b := range corpus(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a","metadata":{"tags":["x"]},"status_fields":{"guardrail_status":"ok"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		agree(t, b)
		if _, err := ParseLiteLLM(b); err == nil {
			// ParseLiteLLM takes the fast path first; it must still accept
			// exactly what the general path accepts.
			if bb := bytes.TrimSpace(b); len(bb) > 0 && bb[0] == '{' {
				if _, gerr := generalLiteLLM(bb); gerr != nil {
					t.Fatalf("ParseLiteLLM accepted what the general path refuses: %v", gerr)
				}
			}
		}
	})
}

// BenchmarkParseLiteLLM decodes loadgen's default mix with ParseLiteLLM
// (fast path), with the general path alone, and only scans it. cpu-ns/op is
// the process's CPU time per payload, which a busy machine moves far less
// than ns/op.
func BenchmarkParseLiteLLM(b *testing.B) {
	g, err := loadgen.New(loadgen.Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var payloads [][]byte
	size := 0
	for len(payloads) < 2000 {
		for _, p := range g.Next().LiteLLM {
			payloads = append(payloads, p)
			size += len(p)
		}
	}
	run := func(name string, fn func(p []byte)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size / len(payloads)))
			c0 := cpuTime()
			for i := 0; b.Loop(); i++ {
				fn(payloads[i%len(payloads)])
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
	run("fast", func(p []byte) {
		if _, err := ParseLiteLLM(p); err != nil {
			b.Fatal(err)
		}
	})
	run("general", func(p []byte) {
		w, err := generalLiteLLM(bytes.TrimSpace(p))
		if err != nil {
			b.Fatal(err)
		}
		_ = w.literal()
	})
	run("scan-only", func(p []byte) {
		s := scanner{b: p}
		if _, _, ok := s.value(0); !ok {
			b.Fatal("scan")
		}
	})
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSpecial: the eight-byte test flags exactly the bytes plain does not
// hold, at every position, and its lowest flag is the first such byte.
func TestSpecial(t *testing.T) {
	for c := range 256 {
		for pos := range 8 {
			for _, fill := range []byte{'a', 0x7f, ' '} {
				w := bytes.Repeat([]byte{fill}, 8)
				w[pos] = byte(c)
				got := special(binary.LittleEndian.Uint64(w))
				if plain[c] != (got == 0) {
					t.Fatalf("byte %#x at %d (fill %q): flags %#x", c, pos, fill, got)
				}
				if got != 0 && bits.TrailingZeros64(got)>>3 != pos {
					t.Fatalf("byte %#x at %d: lowest flag at %d", c, pos, bits.TrailingZeros64(got)>>3)
				}
			}
		}
	}
}
