package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/internal/mutant"
)

// referenceDecodeDecision is DecodeDecision as it was before the compact
// decoder (encoding/json/v2 alone), kept verbatim: what the store stored and
// rejected, and with which reason.
func referenceDecodeDecision(value []byte, d *record.Decision) error {
	*d = record.Decision{}
	if err := jsonv2.Unmarshal(value, d); err != nil {
		return fmt.Errorf("decode decision: %w", err)
	}
	switch {
	case d.RecordID == "":
		return fmt.Errorf("%w: empty record_id", ErrInvalid)
	case d.Version < 1:
		return fmt.Errorf("%w: record %s has version 0", ErrInvalid, d.RecordID)
	case d.SchemaVersion < 1 || d.SchemaVersion > record.SchemaVersion:
		return fmt.Errorf("%w: record %s has schema_version %d, this store writes 1 to %d",
			ErrInvalid, d.RecordID, d.SchemaVersion, record.SchemaVersion)
	}
	return nil
}

// checkDecode compares the store's decode of value (as the writer calls it,
// strings shared with the value) with the reference: the same Decision, or
// the same error text (rejected_records.reason).
func checkDecode(t testing.TB, value []byte) error {
	t.Helper()
	own := bytes.Clone(value)
	var got, want record.Decision
	gerr := decodeDecision(own, string(own), &got)
	werr := referenceDecodeDecision(value, &want)
	switch {
	case (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error():
		t.Fatalf("decode of %q:\n got error %v\nwant error %v", value, gerr, werr)
	case gerr == nil && !reflect.DeepEqual(&got, &want):
		t.Fatalf("decode of %q:\n got %#v\nwant %#v", value, got, want)
	}
	var pub record.Decision
	if perr := DecodeDecision(value, &pub); fmt.Sprint(perr) != fmt.Sprint(werr) || perr == nil && !reflect.DeepEqual(&pub, &want) {
		t.Fatalf("DecodeDecision of %q: %v, reference %v", value, perr, werr)
	}
	return gerr
}

// TestDecodeDecisionMatchesReference: the store decodes, rejects and names
// the reason for every value exactly as before the compact decoder — on the
// values enrich publishes (canonical bytes of the golden and generated
// records), the store tests' encoding/json values, invalid records, and
// mutants of all of them.
func TestDecodeDecisionMatchesReference(t *testing.T) {
	values := decisionBenchValues(t, 600)
	for i := range 200 {
		values = append(values, mustJSON(t, genDecision(i)))
	}
	for _, mod := range []func(*record.Decision){
		func(d *record.Decision) { d.RecordID = "" },
		func(d *record.Decision) { d.Version = 0 },
		func(d *record.Decision) { d.SchemaVersion = 0 },
		func(d *record.Decision) { d.SchemaVersion = record.SchemaVersion + 1 },
	} {
		d := genDecision(1)
		mod(&d)
		c, _ := d.AppendCanonical(nil)
		values = append(values, c, mustJSON(t, d))
	}
	rng := rand.New(rand.NewPCG(17, 5))
	var read, rejected int
	for _, v := range values {
		if checkDecode(t, v) == nil {
			read++
		} else {
			rejected++
		}
		for range 10 {
			m := mutant.Byte(rng, v)
			if checkDecode(t, m) == nil {
				read++
			} else {
				rejected++
			}
		}
	}
	t.Logf("%d values stored, %d rejected, all as before", read, rejected)
}

// FuzzDecodeDecision: on any bytes, the store's decode stores or rejects
// (with the same reason) exactly as the reference, and never panics.
func FuzzDecodeDecision(f *testing.F) {
	for _, v := range decisionBenchValues(f, 40) {
		f.Add(v)
	}
	f.Add(mustJSON(f, genDecision(3)))
	f.Add([]byte(`{"record_id":"x","version":1,"schema_version":1}`))
	f.Add([]byte(`{"record_id":"","version":1,"schema_version":1}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		checkDecode(t, value)
	})
}
