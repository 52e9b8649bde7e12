package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/auditline/auditline/sinks/archive/archivetest"
	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/keys"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
)

type fixture struct {
	signer *keys.Signer
	ring   *keys.Ring
	rows   []batch.Row
	data   []byte
	m      *manifest.Manifest
	mdata  []byte
}

func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	s, err := keys.NewSigner("auditline.example/archive", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{signer: s, ring: keys.NewRing(s.Public())}
	for i := range n {
		f.rows = append(f.rows, batch.NewRow("d", 1, int64(1000+2*i), time.UnixMilli(1763807445118+int64(i)), archivetest.Value(i)))
	}
	f.data, f.m = f.encode(t, f.rows)
	f.mdata, err = f.m.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) encode(t testing.TB, rows []batch.Row) ([]byte, *manifest.Manifest) {
	root, err := merkletree.Root(batch.Leaves(rows))
	if err != nil {
		t.Fatal(err)
	}
	from, to := rows[0].Offset, rows[len(rows)-1].Offset+1
	var buf bytes.Buffer
	if err := batch.Encode(&buf, rows, batch.Meta{Topic: "d", Partition: 1, From: from, To: to, Root: root}, batch.Options{}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	minT, maxT := rows[0].Timestamp, rows[len(rows)-1].Timestamp
	return buf.Bytes(), &manifest.Manifest{
		Type: manifest.ManifestType, Origin: "auditline.example/archive", Topic: "d", Partition: 1, Seq: 0,
		From: from, To: to, Count: int64(len(rows)), MinTime: minT, MaxTime: maxT,
		ObjectKey: "batches/x.parquet", ObjectSize: int64(buf.Len()), ObjectSHA256: hex.EncodeToString(sum[:]),
		MerkleRoot: hex.EncodeToString(root), SchemaVersion: 1, KeyID: f.signer.KeyID(), SealedAt: 1,
		LeafRule: merkletree.LeafRuleV2,
	}
}

func TestCheckBatch(t *testing.T) {
	f := newFixture(t, 300)
	ctx := context.Background()
	if _, n, err := CheckBatch(ctx, f.data, f.m); err != nil || n != 300 {
		t.Fatalf("CheckBatch = %d, %v", n, err)
	}
	for _, tc := range []struct {
		name  string
		mut   func(rows []batch.Row, m *manifest.Manifest) []batch.Row
		check Check
	}{
		{"record bytes changed, stored leaf kept", func(rows []batch.Row, _ *manifest.Manifest) []batch.Row {
			rows[7].Canonical = bytes.Replace(rows[7].Canonical, []byte(`"version":1`), []byte(`"version":7`), 1)
			return rows
		}, CheckRecords},
		{"record bytes and leaf changed", func(rows []batch.Row, _ *manifest.Manifest) []batch.Row {
			rows[7].Canonical = append([]byte(nil), rows[8].Canonical...)
			rows[7].Leaf = merkletree.LeafV2("d", 1, rows[7].Offset, int64(rows[7].Timestamp), rows[7].Canonical)
			return rows
		}, CheckRoot},
		{"a record dropped", func(rows []batch.Row, _ *manifest.Manifest) []batch.Row { return append(rows[:5:5], rows[6:]...) }, CheckRecords},
		{"two records swapped", func(rows []batch.Row, _ *manifest.Manifest) []batch.Row {
			rows[3], rows[4] = rows[4], rows[3]
			return rows
		}, CheckRecords},
	} {
		rows := append([]batch.Row(nil), f.rows...)
		rows = tc.mut(rows, f.m)
		var buf bytes.Buffer
		if err := batch.Encode(&buf, rows, batch.Meta{}, batch.Options{}); err != nil {
			t.Fatal(err)
		}
		_, _, err := CheckBatch(ctx, buf.Bytes(), f.m)
		var re *RecordsError
		if !errors.As(err, &re) || re.Check != tc.check {
			t.Errorf("%s: %v, want a %s failure", tc.name, err, tc.check)
		}
	}
	if _, _, err := CheckBatch(ctx, []byte("not parquet"), f.m); err == nil {
		t.Error("CheckBatch accepted garbage")
	}
}

func TestProofRoundTrip(t *testing.T) {
	f := newFixture(t, 37)
	leaves := batch.Leaves(f.rows)
	for _, i := range []int{0, 1, 17, 36} {
		d := f.rows[i].Decision
		p, err := ProofFor(f.m, "manifests/x.manifest", f.mdata, leaves, i, f.rows[i].Canonical, f.rows[i].Offset, f.rows[i].Timestamp, d.RecordID, d.Version)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(p)
		back, err := DecodeProof(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyProof(back, f.ring, nil, nil); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		bad := *back
		bad.Path = append([]string(nil), bad.Path...)
		bad.Path[0] = bad.Path[0][:10] + "0" + bad.Path[0][11:]
		if bad.Path[0] == back.Path[0] {
			bad.Path[0] = bad.Path[0][:10] + "1" + bad.Path[0][11:]
		}
		if _, err := VerifyProof(&bad, f.ring, nil, nil); err == nil {
			t.Fatalf("leaf %d: a damaged path verified", i)
		}
		other, _ := keys.NewSigner("auditline.example/archive", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)))
		if _, err := VerifyProof(back, keys.NewRing(other.Public()), nil, nil); err == nil {
			t.Fatalf("leaf %d: verified under an untrusted key", i)
		}
	}
}

func FuzzDecodeProof(f *testing.F) {
	fx := newFixture(f, 5)
	d := fx.rows[2].Decision
	p, _ := ProofFor(fx.m, "m", fx.mdata, batch.Leaves(fx.rows), 2, fx.rows[2].Canonical, fx.rows[2].Offset, fx.rows[2].Timestamp, d.RecordID, d.Version)
	good, _ := json.Marshal(p)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"auditline.archive.inclusion-proof/v1","leaf_index":99,"tree_size":1,"path":["zz"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeProof(data)
		if err != nil {
			return
		}
		if _, err := VerifyProof(p, fx.ring, nil, nil); err == nil {
			// Whatever verifies must really be in a signed tree.
			if p.Root != fx.m.MerkleRoot {
				t.Fatalf("verified a proof to root %s", p.Root)
			}
		}
	})
}

// TestReadSeqs: the completeness check's partial decoder reads exactly what
// unmarshalling the whole record reads, on canonical records (it stops after
// "evidence") and on records whose members are not sorted (read to the end).
func TestReadSeqs(t *testing.T) {
	cases := [][]byte{
		[]byte(`{"a":[1,{"b":2}],"emitter":{"config_seq":7,"id":"e1"},"evidence":{"sources":[{"emitter":"e1","received_at":"2026-11-22T10:30:07.002Z","seq":3}]},"z":{"evidence":1}}`),
		[]byte(`{"z":1,"evidence":{"sources":[{"emitter":"e2","seq":9}]},"emitter":{"id":"e2","config_seq":2}}`),
		[]byte(`{"emitter":{"id":"e3"}}`),
		[]byte(`{}`),
	}
	for i := range 50 {
		cases = append(cases, archivetest.Value(i))
	}
	for i, rec := range cases {
		var want sealedSeqs
		wantOK := json.Unmarshal(rec, &want) == nil
		got, ok := readSeqs(rec)
		if ok != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("case %d: readSeqs = %+v, %v; json.Unmarshal = %+v, %v", i, got, ok, want, wantOK)
		}
	}
	for _, bad := range []string{``, `[]`, `{"emitter":1}`, `{"evidence":{"sources":{}}}`, `{"a":`} {
		if _, ok := readSeqs([]byte(bad)); ok {
			t.Errorf("readSeqs(%q) accepted", bad)
		}
	}
}
