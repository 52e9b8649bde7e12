package layout

import (
	"sort"
	"testing"
)

func TestKeysSortInChainOrder(t *testing.T) {
	l := New("x/")
	keys := []string{l.Manifest(1, 0), l.Manifest(0, 99), l.Manifest(0, 100), l.Manifest(0, 9), l.Manifest(10, 0), l.Manifest(2, 5)}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	want := []string{l.Manifest(0, 9), l.Manifest(0, 99), l.Manifest(0, 100), l.Manifest(1, 0), l.Manifest(2, 5), l.Manifest(10, 0)}
	for i := range want {
		if sorted[i] != want[i] {
			t.Fatalf("sorted[%d] = %s, want %s", i, sorted[i], want[i])
		}
	}
}

func TestParseRoundTrip(t *testing.T) {
	l := New("pre")
	for _, tc := range []struct {
		p        int32
		from, to int64
	}{{0, 0, 1}, {3, 1000, 2000}, {2147483647, 9223372036854775806, 9223372036854775807}} {
		p, from, err := l.ParseManifest(l.Manifest(tc.p, tc.from))
		if err != nil || p != tc.p || from != tc.from {
			t.Errorf("ParseManifest(%v) = %d %d %v", tc, p, from, err)
		}
		p, from, to, err := l.ParseBatch(l.Batch(tc.p, tc.from, tc.to))
		if err != nil || p != tc.p || from != tc.from || to != tc.to {
			t.Errorf("ParseBatch(%v) = %d %d %d %v", tc, p, from, to, err)
		}
	}
	if seq, h, err := l.ParseCosignature(l.Cosignature(42, 0x0badcafe)); err != nil || seq != 42 || h != 0x0badcafe {
		t.Errorf("ParseCosignature = %d %x %v", seq, h, err)
	}
	for _, bad := range []string{l.CosignaturesPrefix() + "42.0badcafe.note", l.Cosignature(1, 2) + "x", l.CosignaturesPrefix() + "00000000000000000042.0BADCAFE.note"} {
		if _, _, err := l.ParseCosignature(bad); err == nil {
			t.Errorf("ParseCosignature(%q) accepted", bad)
		}
	}
	seq, err := l.ParseCheckpoint(l.Checkpoint(42))
	if err != nil || seq != 42 {
		t.Errorf("ParseCheckpoint = %d %v", seq, err)
	}
	for _, bad := range []string{"", "pre/manifests/p1/1.manifest", "pre/manifests/p0000000001/0000000000000000000x.manifest", "other/manifests/p0000000001/00000000000000000001.manifest"} {
		if _, _, err := l.ParseManifest(bad); err == nil {
			t.Errorf("ParseManifest(%q) accepted", bad)
		}
	}
	if _, _, _, err := l.ParseBatch(l.BatchPrefix(1) + "00000000000000000005-00000000000000000004.parquet"); err == nil {
		t.Error("ParseBatch accepted to < from")
	}
}

func TestManifestAfter(t *testing.T) {
	l := New("")
	// Every key starting at >= from sorts after the bound; every key before from does not.
	for _, from := range []int64{0, 1, 10, 999, 1000} {
		bound := l.ManifestAfter(7, from)
		if from > 0 && !(l.Manifest(7, from-1) <= bound) {
			t.Errorf("from %d: key of from-1 sorts after the bound", from)
		}
		if !(l.Manifest(7, from) > bound) {
			t.Errorf("from %d: key of from does not sort after the bound %q", from, bound)
		}
	}
}
