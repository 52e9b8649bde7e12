package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ledger"
	"github.com/auditline/auditline/sinks/archive/batch"
)

// CheckCompleteness: an emitter of auditline's LiteLLM plugin has sequence
// numbers no sealed record accounts for (a failure only with
// Options.RequireComplete; a warning otherwise).
const CheckCompleteness Check = "completeness"

// EmitterReport is one emitter's coverage in the sealed records verified:
// the numbers its sealed records account for (evidence.sources[].seq and
// emitter.config_seq, package ledger's rule) and what is missing between
// them.
type EmitterReport struct {
	Emitter  string         `json:"emitter"`
	First    int64          `json:"first"` // 1, or the lowest number sealed when the check is windowed
	Last     int64          `json:"last"`
	Sealed   int64          `json:"sealed"` // distinct numbers sealed
	Missing  int64          `json:"missing"`
	Complete bool           `json:"complete"`
	Gaps     []ledger.Range `json:"gaps"`
	Summary  string         `json:"summary"` // "sequence 1..1534 complete (1534 events)" or the missing numbers
}

// completeness is the rowCheck behind Report.Emitters: it reads the
// plugin's (emitter, seq) pairs from each verified record's canonical bytes
// — the bytes the leaves are computed from, so what it counts is sealed —
// into a ledger.Builder. Memory: one range per gap per emitter.
type completeness struct {
	mu sync.Mutex
	b  *ledger.Builder
	// windowed: only part of the archive is read (--from/--to/--partition),
	// so coverage starts at the lowest number seen instead of 1.
	windowed bool
	require  bool
}

func newCompleteness(o Options) *completeness {
	return &completeness{b: ledger.NewBuilder(), windowed: len(o.Partitions) > 0 || !o.From.IsZero() || !o.To.IsZero(), require: o.RequireComplete}
}

// sealedSeqs is the part of a record the ledger reads.
type sealedSeqs struct {
	Emitter struct {
		ID        string `json:"id"`
		ConfigSeq int64  `json:"config_seq"`
	} `json:"emitter"`
	Evidence struct {
		Sources []struct {
			Emitter    string      `json:"emitter"`
			Seq        int64       `json:"seq"`
			ReceivedAt record.Time `json:"received_at"`
		} `json:"sources"`
	} `json:"evidence"`
}

type seqObs struct {
	emitter string
	seq     int64
	at      time.Time
}

// records collects a batch's (emitter, seq) pairs during the leaf pass and
// adds them once the batch verified (recordCheck).
func (c *completeness) records(e *mentry) (func(int, []byte), func()) {
	var obs []seqObs
	visit := func(_ int, rec []byte) {
		if !hasEmitter(rec) {
			return // the stock callback's records, access records …: no sequence
		}
		s, ok := readSeqs(rec)
		if !ok {
			return // not a decision record; the leaf check has judged its bytes
		}
		if s.Emitter.ID != "" && s.Emitter.ConfigSeq > 0 {
			obs = append(obs, seqObs{emitter: s.Emitter.ID, seq: s.Emitter.ConfigSeq})
		}
		for _, src := range s.Evidence.Sources {
			if src.Emitter != "" && src.Seq > 0 {
				var at time.Time
				if src.ReceivedAt != 0 {
					at = src.ReceivedAt.Std()
				}
				obs = append(obs, seqObs{emitter: src.Emitter, seq: src.Seq, at: at})
			}
		}
	}
	commit := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, o := range obs {
			c.b.Add(o.emitter, o.seq, o.at)
		}
	}
	return visit, commit
}

// batch: everything is read in records.
func (c *completeness) batch(context.Context, *mentry, *batch.File) error { return nil }

// readSeqs decodes the members of a record the ledger reads. It skips the
// other top-level members without decoding them and stops after "evidence":
// in canonical JSON (RFC 8785, what is sealed) members are sorted, so
// "emitter" and "evidence" come before most of the record. When the members
// before "evidence" are not sorted, the record is read to its end. (Unmarshalling the whole record
// was 43 % of verify's time per batch.)
func readSeqs(rec []byte) (sealedSeqs, bool) {
	var s sealedSeqs
	dec := jsontext.NewDecoder(bytes.NewReader(rec))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return s, false
	}
	prev, sorted := "", true
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return s, false
		}
		n := name.String()
		sorted, prev = sorted && n > prev, n
		switch n {
		case "emitter":
			v, err := dec.ReadValue()
			if err != nil || json.Unmarshal(v, &s.Emitter) != nil {
				return s, false
			}
		case "evidence":
			v, err := dec.ReadValue()
			if err != nil || json.Unmarshal(v, &s.Evidence) != nil {
				return s, false
			}
			if sorted {
				return s, true
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return s, false
			}
		}
	}
	return s, true
}

// hasEmitter is a cheap test for a non-empty "emitter":"…" member (a
// source's) in canonical JSON: records without one carry no sequence.
func hasEmitter(rec []byte) bool {
	key := []byte(`"emitter":"`)
	for {
		i := bytes.Index(rec, key)
		if i < 0 {
			return false
		}
		rec = rec[i+len(key):]
		if len(rec) > 0 && rec[0] != '"' {
			return true
		}
	}
}

func (c *completeness) finish(rep *Report) {
	es := c.b.Emitters()
	if c.windowed {
		es = c.b.Within()
	}
	for _, e := range es {
		er := EmitterReport{Emitter: e.ID, First: e.First, Last: e.Last, Sealed: e.Seen, Missing: e.Missing(), Complete: e.Complete(),
			Gaps: []ledger.Range{}, Summary: e.Summary()}
		for _, g := range e.Gaps {
			er.Gaps = append(er.Gaps, g.Range)
		}
		rep.Emitters = append(rep.Emitters, er)
		if e.Complete() {
			continue
		}
		f := Failure{Check: CheckCompleteness, Key: "emitter " + e.ID, Partition: -1, From: -1, To: -1,
			Detail: fmt.Sprintf("%s: no sealed record accounts for these sequence numbers (lost at the first hop, or not sealed yet); runbook: docs/litellm.md §12", e.Summary())}
		if c.require {
			rep.fail(f)
		} else {
			rep.warn(f)
		}
	}
}

// writeEmitters prints one line per emitter for WriteText.
func (r *Report) writeEmitters(w io.Writer) {
	for _, e := range r.Emitters {
		fmt.Fprintf(w, "emitter   %s: %s\n", e.Emitter, e.Summary)
	}
}
