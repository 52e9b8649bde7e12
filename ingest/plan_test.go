package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/ingest/body"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/source"
)

// testPlanners returns a planner per endpoint, as newServer builds them.
func testPlanners(t testing.TB, maxEvents, maxEventBytes int) map[string]*planner {
	t.Helper()
	schemas, err := source.NewSchemas()
	if err != nil {
		t.Fatal(err)
	}
	topics := raw.Topics{Prefix: "p."}
	mk := func(src raw.Source, strict bool, d func([]byte, body.Kind, raw.Format) (source.Event, error)) *planner {
		return &planner{src: src, strict: strict, decode: d, topics: topics, maxEvents: maxEvents, maxEventBytes: maxEventBytes}
	}
	return map[string]*planner{
		"litellm":   mk(raw.SourceLiteLLM, false, source.LiteLLM),
		"alerts":    mk(raw.SourceAlert, false, source.Alert),
		"audit":     mk(raw.SourceAdmin, false, source.Admin),
		"gateway":   mk(raw.SourceGateway, true, schemas.Gateway),
		"oversight": mk(raw.SourceOversight, true, schemas.Oversight),
	}
}

// recordLine summarises a record: topic, partition, key, value and the
// headers other than the fixed ones (source, received-at, batch).
func recordLine(r *kgo.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s p%d key=%q %q", r.Topic, r.Partition, r.Key, r.Value)
	for _, h := range r.Headers {
		switch h.Key {
		case raw.HeaderSource, raw.HeaderReceivedAt, raw.HeaderBatch:
			continue
		}
		fmt.Fprintf(&b, " %s=%s", strings.TrimPrefix(h.Key, "auditline-"), h.Value)
	}
	return b.String()
}

// TestPlan pins the planner's decisions: records (after expand with 2
// partitions per topic), the answer, and the refusal.
func TestPlan(t *testing.T) {
	gwOK := string(event(t, "gateway_allow.json"))
	ovSampling := string(event(t, "oversight_sampling.json"))
	ovReview := string(event(t, "oversight_review.json"))
	type want struct {
		records []string
		answer  string // JSON of the 2xx answer, when not refused
		refusal string // JSON of the refusal body, with its status
	}
	cases := []struct {
		name, ep string
		body     string
		ndjson   bool
		want     want
	}{
		{name: "one object", ep: "litellm", body: `{"id":"a","status":"success","litellm_call_id":"k"}`, want: want{
			records: []string{`p.raw.litellm p0 key="k" "{\"id\":\"a\",\"status\":\"success\",\"litellm_call_id\":\"k\"}" format=single event-id=litellm:a:success sender=s`},
			answer:  `{"accepted":1,"skipped_nulls":0,"dead_lettered":0,"format":"single"}`}},
		{name: "array with null and bad elements", ep: "litellm", body: `[null, "x", {"id":"b","status":"failure"}, 1]`, want: want{
			records: []string{
				`p.dlq p0 key="" "\"x\"" format=json_array event-id=dlq:sha256(value) dlq-reason=invalid_event: element 1: want a JSON object (a StandardLoggingPayload), got string sender=s`,
				`p.raw.litellm p0 key="b" "{\"id\":\"b\",\"status\":\"failure\"}" format=json_array event-id=litellm:b:failure sender=s`,
				`p.dlq p0 key="" "1" format=json_array event-id=dlq:sha256(value) dlq-reason=invalid_event: element 3: want a JSON object (a StandardLoggingPayload), got number sender=s`,
			},
			answer: `{"accepted":1,"skipped_nulls":1,"dead_lettered":2,"format":"json_array","errors":[{"element":1,"error":"want a JSON object (a StandardLoggingPayload), got string"},{"element":3,"error":"want a JSON object (a StandardLoggingPayload), got number"}]}`}},
		{name: "ndjson by header", ep: "litellm", ndjson: true, body: `{"id":"a","status":1}`, want: want{
			records: []string{`p.dlq p0 key="" "{\"id\":\"a\",\"status\":1}" format=ndjson event-id=dlq:sha256(value) dlq-reason=invalid_event: element 0: status: want a string, got number sender=s`},
			answer:  `{"accepted":0,"skipped_nulls":0,"dead_lettered":1,"format":"ndjson","errors":[{"element":0,"field":"status","error":"status: want a string, got number"}]}`}},
		{name: "empty array", ep: "litellm", body: `[]`, want: want{answer: `{"accepted":0,"skipped_nulls":0,"dead_lettered":0,"format":"json_array"}`}},
		{name: "invalid json", ep: "litellm", body: "[1,\n x]", want: want{
			records: []string{`p.dlq p0 key="" "[1,\n x]" format= event-id=dlq:sha256(value) dlq-reason=invalid_json: invalid JSON at line 2, column 2 (byte offset 5): unexpected 'x' (want a value) sender=s`},
			refusal: `400 {"error":"invalid JSON at line 2, column 2 (byte offset 5): unexpected 'x' (want a value)","reason":"invalid_json","offset":5,"line":2,"column":2,"dead_lettered":true}`}},
		{name: "too many events", ep: "litellm", body: `[{},{},{},{},{}]`, want: want{
			refusal: `413 {"error":"body has more than 4 events (ingest.max_events); send smaller batches","reason":"too_many_events"}`}},
		{name: "event too large", ep: "litellm", body: `[{"id":"a"},{"id":"` + strings.Repeat("y", 1100) + `"}]`, want: want{
			refusal: `413 {"error":"element 1 is 1109 bytes, larger than ingest.max_event_bytes (1100); nothing was accepted","reason":"event_too_large","element":1}`}},
		{name: "strict: one bad element refuses the body", ep: "gateway", body: `[` + gwOK + `,{"schema":"nope"}]`, want: want{
			records: []string{`p.dlq p0 key="" "[` + strings.ReplaceAll(gwOK, `"`, `\"`) + `,{\"schema\":\"nope\"}]" format=json_array event-id=dlq:sha256(value) dlq-reason=invalid_event: element 1: schema: "nope" is not accepted here (want one of auditline.approval.v1, auditline.gateway.v1) sender=s`},
			refusal: `400 {"error":"element 1: schema: \"nope\" is not accepted here (want one of auditline.approval.v1, auditline.gateway.v1)","reason":"invalid_event","element":1,"field":"schema","dead_lettered":true}`}},
		{name: "control event fans out", ep: "oversight", body: `[` + ovReview + `,` + ovSampling + `]`, want: want{
			records: []string{
				`p.raw.gateway p0 key="2a4c6e80-1b3d-4f57-9a1c-3e5f7b9d1f24" "` + strings.ReplaceAll(ovReview, `"`, `\"`) + `" format=json_array event-id=oversight:dash-5b1e0c7d9a8f4e3b2c1d0e9f8a7b6c5d sender=s`,
				`p.raw.gateway p0 key="sampling_control" "` + strings.ReplaceAll(ovSampling, `"`, `\"`) + `" format=json_array event-id=oversight:dash-0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f partition=0 sender=s`,
				`p.raw.gateway p1 key="sampling_control" "` + strings.ReplaceAll(ovSampling, `"`, `\"`) + `" format=json_array event-id=oversight:dash-0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f partition=1 sender=s`,
			},
			answer: `{"accepted":2,"skipped_nulls":0,"dead_lettered":0,"format":"json_array"}`}},
	}
	pls := testPlanners(t, 4, 1100)
	at := time.UnixMilli(1_700_000_000_000)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := pls[c.ep].plan(planInput{body: []byte(c.body), ndjson: c.ndjson, sender: "s", receivedAt: at})
			var got want
			for _, r := range p.expand(map[string]int{"p.raw.gateway": 2}) {
				// A DLQ event id is the SHA-256 of the element, or of the
				// whole body: named so below.
				line := strings.Replace(recordLine(r), "dlq:"+sha256Hex(r.Value), "dlq:sha256(value)", 1)
				got.records = append(got.records, strings.Replace(line, "dlq:"+sha256Hex([]byte(c.body)), "dlq:sha256(body)", 1))
			}
			if p.refusal != nil {
				b, _ := json.Marshal(p.refusal.body)
				got.refusal = fmt.Sprintf("%d %s", p.refusal.status, b)
			} else {
				b, _ := json.Marshal(p.answer)
				got.answer = string(b)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got\n%s\nwant\n%s", dump(got.records, got.answer, got.refusal), dump(c.want.records, c.want.answer, c.want.refusal))
			}
		})
	}
}

func dump(records []string, answer, refusal string) string {
	return strings.Join(append(records, "answer: "+answer, "refusal: "+refusal), "\n")
}

// TestPlanDLQParts: a dead-lettered body larger than max_event_bytes goes in
// numbered parts that concatenate to the body, all under the body's hash.
func TestPlanDLQParts(t *testing.T) {
	pl := testPlanners(t, 10, 1024)["litellm"]
	b := append([]byte("["), bytes.Repeat([]byte("x"), 2500)...)
	p := pl.plan(planInput{body: b, sender: "s"})
	if p.refusal == nil || p.refusal.status != 400 || !p.refusal.body.DeadLettered {
		t.Fatalf("refusal %+v", p.refusal)
	}
	var joined []byte
	for i, r := range p.records {
		joined = append(joined, r.Value...)
		if got, want := raw.Header(r, raw.HeaderPart), fmt.Sprintf("%d/3", i+1); got != want {
			t.Errorf("part %d: header %q, want %q", i, got, want)
		}
		if got, want := raw.Header(r, raw.HeaderEventID), "dlq:"+sha256Hex(b); got != want {
			t.Errorf("part %d: event id %q, want %q", i, got, want)
		}
	}
	if len(p.records) != 3 || !bytes.Equal(joined, b) {
		t.Fatalf("%d parts; joined equal: %v", len(p.records), bytes.Equal(joined, b))
	}
}

// TestPlanErrorsCapped: every bad element is dead-lettered, at most
// maxReportedErrors are listed.
func TestPlanErrorsCapped(t *testing.T) {
	pl := testPlanners(t, 100, 1024)["litellm"]
	p := pl.plan(planInput{body: []byte("[" + strings.Repeat("1,", 29) + "1]")})
	if p.refusal != nil || p.answer.DeadLettered != 30 || len(p.answer.Errors) != maxReportedErrors || len(p.records) != 30 {
		t.Fatalf("dead-lettered %d, errors %d, records %d", p.answer.DeadLettered, len(p.answer.Errors), len(p.records))
	}
}

// FuzzPlan checks the planner's invariants on arbitrary bodies for every
// endpoint: it never panics, it is deterministic, an accepted body's raw
// records are byte-exact elements of the body (one per accepted event, with
// the right batch index), every element is accounted for exactly once, and
// a dead-lettered body's parts concatenate to the body.
func FuzzPlan(f *testing.F) {
	for _, name := range []string{"01_success_plain_openai.json", "09_generic_api_batch_post_body_json_array.json",
		"10_alert_webhook_budget_crossed_key.json", "14_audit_log_key_budget_update.json"} {
		f.Add(uint8(0), false, example(f, name))
	}
	for i, name := range []string{"gateway_block.json", "oversight_review.json", "oversight_sampling.json", "litellm_python_nan.json", "litellm_legacy_v1.json"} {
		f.Add(uint8(i), i%2 == 0, event(f, name))
	}
	f.Add(uint8(0), false, []byte("[null, 1, {\"id\": NaN}]"))
	f.Add(uint8(4), true, []byte("{}\n{}"))
	f.Add(uint8(0), false, []byte("[{\"id\":\"a\"}, {\"id\":\"a\"},"))
	pls := testPlanners(f, 50, 1024)
	names := []string{"litellm", "alerts", "audit", "gateway", "oversight"}
	f.Fuzz(func(t *testing.T, ep uint8, ndjson bool, b []byte) {
		pl := pls[names[int(ep)%len(names)]]
		in := planInput{body: b, ndjson: ndjson, sender: "fz", receivedAt: time.UnixMilli(1)}
		p := pl.plan(in)
		if again := pl.plan(in); !reflect.DeepEqual(p, again) {
			t.Fatalf("two plans of one body differ")
		}
		recs := p.expand(map[string]int{pl.topics.RawGateway(): 3})
		if p.refusal != nil {
			switch {
			case p.refusal.status == 413 && len(recs) == 0:
			case p.refusal.status == 400 && p.refusal.body.DeadLettered && len(recs) > 0:
				var joined []byte
				for _, r := range recs {
					if r.Topic != pl.topics.DLQ() {
						t.Fatalf("refused body has a record on %s", r.Topic)
					}
					joined = append(joined, r.Value...)
				}
				if !bytes.Equal(joined, b) {
					t.Fatalf("DLQ parts do not make the body")
				}
			default:
				t.Fatalf("refusal %d with %d records", p.refusal.status, len(recs))
			}
			return
		}
		form, els, err := body.Split(b, ndjson, 0)
		if err != nil {
			t.Fatalf("accepted a body the splitter rejects: %v", err)
		}
		if p.answer.Format != form.String() {
			t.Fatalf("format %q, want %q", p.answer.Format, form)
		}
		if n := p.answer.Accepted + p.answer.DeadLettered + p.answer.SkippedNulls; n != len(els) {
			t.Fatalf("%d elements, %d accounted for", len(els), n)
		}
		if len(p.records) != p.answer.Accepted+p.answer.DeadLettered {
			t.Fatalf("%d records for %d accepted + %d dead-lettered", len(p.records), p.answer.Accepted, p.answer.DeadLettered)
		}
		for _, r := range p.records {
			batch := raw.Header(r, raw.HeaderBatch)
			var idx int
			if _, err := fmt.Sscanf(batch[strings.IndexByte(batch, '/')+1:], "%d", &idx); err != nil || idx < 0 || idx >= len(els) {
				t.Fatalf("batch header %q", batch)
			}
			if !bytes.Equal(els[idx].Bytes(b), r.Value) {
				t.Fatalf("record value %q is not element %d of the body", r.Value, idx)
			}
		}
		for _, r := range recs {
			if raw.Header(r, raw.HeaderSender) != "fz" {
				t.Fatalf("record without its sender: %s", recordLine(r))
			}
		}
	})
}
