package verify

import (
	"context"
	"sort"
	"strings"

	"github.com/auditline/auditline/sinks/archive/bucket"
)

// object is one key from the version listing.
type object struct {
	latest   bucket.Info
	versions int  // non-delete-marker versions
	deleted  bool // the latest version is a delete marker
}

// inventory is every object under the prefix, by kind, from one versioned
// listing.
type inventory struct {
	objects     map[string]*object
	manifests   map[int32][]string // by partition, in key (chain) order
	batches     map[string]bool
	checkpoints []string // *.checkpoint keys, sorted
	cosigs      []string // cosignature keys, sorted
}

// inventory lists every version of the archive's objects (phase 1).
//
// The listing is a consistent snapshot of a live archive. The archiver writes
// a batch object, then its manifest, then a checkpoint naming the manifest,
// then the checkpoint's time-stamp token and its witnesses' cosignatures;
// nothing is written twice. The listing goes the other way — cosignatures,
// checkpoints (with their tokens), manifests, batch objects — one prefix
// after the other, so whatever a listed object references was written before
// it and is listed too, unless it was removed. (One listing in key order —
// batches/ before checkpoints/, cosignatures/ and manifests/ — took a batch
// sealed while it ran for deleted: its manifest, written after the listing
// had passed batches/, was listed.) Objects written after their prefix was
// listed are outside the snapshot: verified by the next run.
func (v *verifier) inventory(ctx context.Context) error {
	lay := v.o.Layout
	inv := &inventory{objects: map[string]*object{}, manifests: map[int32][]string{}, batches: map[string]bool{}}
	for _, prefix := range []string{lay.CosignaturesPrefix(), lay.CheckpointsPrefix(), lay.ManifestsPrefix(), lay.BatchesPrefix()} {
		if err := v.o.Bucket.ListVersions(ctx, prefix, func(in bucket.Info) error {
			ob := inv.objects[in.Key]
			if ob == nil {
				ob = &object{}
				inv.objects[in.Key] = ob
			}
			if in.IsLatest {
				ob.latest = in
				ob.deleted = in.DeleteMarker
			}
			if !in.DeleteMarker {
				ob.versions++
			}
			return nil
		}); err != nil {
			return err
		}
	}
	want := map[int32]bool{}
	for _, p := range v.o.Partitions {
		want[p] = true
	}
	for key := range inv.objects {
		switch {
		case strings.HasPrefix(key, lay.ManifestsPrefix()):
			p, _, err := lay.ParseManifest(key)
			if err != nil {
				v.rep.warn(Failure{Check: CheckOrphan, Key: key, Partition: -1, From: -1, To: -1, Detail: "not a manifest key"})
				continue
			}
			inv.manifests[p] = append(inv.manifests[p], key)
		case strings.HasPrefix(key, lay.BatchesPrefix()):
			inv.batches[key] = true
		case strings.HasPrefix(key, lay.CheckpointsPrefix()) && strings.HasSuffix(key, ".checkpoint"):
			inv.checkpoints = append(inv.checkpoints, key)
		case strings.HasPrefix(key, lay.CosignaturesPrefix()):
			inv.cosigs = append(inv.cosigs, key)
		}
	}
	for _, keys := range inv.manifests {
		sort.Strings(keys)
	}
	sort.Strings(inv.checkpoints)
	sort.Strings(inv.cosigs)
	v.inv = inv
	return nil
}

// orphans warns about batch objects no manifest references (an upload before
// a crash, or a lost race: not evidence).
func (v *verifier) orphans() {
	referenced := map[string]bool{}
	end := map[int32]int64{} // each partition's chain end in the snapshot
	for _, e := range v.byKey {
		if e.M != nil {
			referenced[e.M.ObjectKey] = true
			end[e.M.Partition] = max(end[e.M.Partition], e.M.To)
		}
		if e.unverifiedObject != "" {
			referenced[e.unverifiedObject] = true
		}
	}
	for key := range v.inv.batches {
		if referenced[key] {
			continue
		}
		p, from, to, err := v.o.Layout.ParseBatch(key)
		if err != nil {
			p, from, to = -1, -1, -1
		} else if e, ok := end[p]; ok && from >= e {
			continue // being sealed: its manifest was written after the manifests were listed
		}
		v.rep.warn(Failure{Check: CheckOrphan, Key: key, Partition: p, From: from, To: to,
			Detail: "no manifest references this object (an upload before a crash or a lost race; it is not evidence)"})
	}
}
