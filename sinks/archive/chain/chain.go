// Package chain reads the archive's signed statements from the bucket the way
// every reader of the archive needs them: a partition's manifests in chain
// order, opened against the trusted keys ("list manifests → filter → open",
// once, for verify, prove, export and the archiver's checkpointer), a
// batch's leaf hashes with ranged reads, and the checkpoints.
//
// Reads run concurrently (Reader.Parallel GETs in flight) but results are
// delivered in key order, which is chain order (package layout). A manifest
// that cannot be read or does not verify is delivered with Entry.Err set,
// never silently dropped: deciding what a bad statement means is the
// caller's job (verify reports it, the checkpointer refuses to sign over it).
package chain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditline/auditline/sinks/archive/batch"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/sinks/archive/layout"
	"github.com/auditline/auditline/sinks/archive/manifest"
	"github.com/auditline/auditline/sinks/archive/merkletree"
	"github.com/auditline/auditline/sinks/archive/tlog"
)

// DefaultParallel is the number of GETs in flight when Reader.Parallel is 0.
const DefaultParallel = 8

// Reader reads one archive (a layout in a bucket) with a set of trusted keys.
type Reader struct {
	Bucket *bucket.Bucket
	Layout layout.Layout
	// Keys open manifests and checkpoints. They must come from the caller's
	// trust decision (an auditor's --key files, the archiver's own ring),
	// never implicitly from the bucket.
	Keys     note.Verifiers
	Parallel int
}

// Entry is one manifest as read.
type Entry struct {
	Key       string
	Partition int32 // from the key
	From      int64 // from the key
	Data      []byte
	SHA256    string      // hex SHA-256 of Data
	Info      bucket.Info // retention of the object read
	M         *manifest.Manifest
	// Err is set when the object could not be read (Data is nil) or did not
	// open (a *manifest.Error; Data is set): M is nil then.
	Err error
}

// List returns the manifest keys of the given partitions (every partition
// when empty), by partition, each in chain order. Keys under the manifests
// prefix that are not manifest keys are skipped.
func (r Reader) List(ctx context.Context, partitions []int32) (map[int32][]string, error) {
	want := map[int32]bool{}
	for _, p := range partitions {
		want[p] = true
	}
	out := map[int32][]string{}
	err := r.Bucket.List(ctx, r.Layout.ManifestsPrefix(), "", func(in bucket.Info) error {
		p, _, err := r.Layout.ParseManifest(in.Key)
		if err != nil || (len(want) > 0 && !want[p]) {
			return nil
		}
		out[p] = append(out[p], in.Key)
		return nil
	})
	return out, err
}

// Partitions returns the keys of List in ascending partition order.
func Partitions(byPart map[int32][]string) []int32 {
	ps := make([]int32, 0, len(byPart))
	for p := range byPart {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Each opens every manifest of the given partitions (all when empty) and
// calls fn in chain order, partition by partition in ascending order.
func (r Reader) Each(ctx context.Context, partitions []int32, fn func(Entry) error) error {
	byPart, err := r.List(ctx, partitions)
	if err != nil {
		return err
	}
	var keys []string
	for _, p := range Partitions(byPart) {
		keys = append(keys, byPart[p]...)
	}
	return r.Open(ctx, keys, fn)
}

// Open reads and opens the manifests at keys, concurrently, and calls fn for
// each in the order of keys. fn's error stops the iteration and is returned;
// so is ctx's.
func (r Reader) Open(ctx context.Context, keys []string, fn func(Entry) error) error {
	return ordered(ctx, r.Parallel, keys, func(ctx context.Context, key string) Entry { return r.read(ctx, key) }, fn)
}

// Object is one object as read by Get.
type Object struct {
	Key  string
	Data []byte
	Info bucket.Info
	Err  error
}

// Get reads the objects at keys, concurrently, and calls fn for each in the
// order of keys (Err set when one could not be read).
func (r Reader) Get(ctx context.Context, keys []string, fn func(Object) error) error {
	return ordered(ctx, r.Parallel, keys, func(ctx context.Context, key string) Object {
		data, info, err := r.Bucket.Get(ctx, key)
		return Object{Key: key, Data: data, Info: info, Err: err}
	}, fn)
}

// ordered runs get for every key with at most par in flight and hands the
// results to fn in key order.
func ordered[T any](ctx context.Context, par int, keys []string, get func(context.Context, string) T, fn func(T) error) error {
	if par <= 0 {
		par = DefaultParallel
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan chan T, par)
	go func() {
		defer close(queue)
		for _, key := range keys {
			fut := make(chan T, 1)
			select {
			case queue <- fut:
			case <-ctx.Done():
				return
			}
			go func() { fut <- get(ctx, key) }()
		}
	}()
	for fut := range queue {
		x := <-fut
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(x); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// read reads and opens one manifest.
func (r Reader) read(ctx context.Context, key string) Entry {
	e := Entry{Key: key, Partition: -1, From: -1}
	if p, from, err := r.Layout.ParseManifest(key); err == nil {
		e.Partition, e.From = p, from
	}
	data, info, err := r.Bucket.Get(ctx, key)
	if err != nil {
		e.Err = err
		return e
	}
	sum := sha256.Sum256(data)
	e.Data, e.Info, e.SHA256 = data, info, hex.EncodeToString(sum[:])
	m, _, err := manifest.Open(data, r.Keys)
	if err != nil {
		e.Err = err
		return e
	}
	e.M = m
	return e
}

// ErrLeaves means a batch's leaves do not match its signed manifest.
var ErrLeaves = errors.New("the batch's leaves do not match its signed manifest")

// Leaves reads the leaf hashes (archive_leaf) of the batch m names, with
// ranged reads (the footer and one column, about 32 bytes per record), and
// checks their number and RFC 6962 root against the signed manifest. It does
// not recompute the leaves from the records: that is verify's work.
func (r Reader) Leaves(ctx context.Context, m *manifest.Manifest) ([][]byte, error) {
	obj, info, err := r.Bucket.Open(ctx, m.ObjectKey)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if info.Size != m.ObjectSize {
		return nil, fmt.Errorf("%s: %w: %d bytes, the manifest says %d", m.ObjectKey, ErrLeaves, info.Size, m.ObjectSize)
	}
	f, err := batch.Open(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.ObjectKey, err)
	}
	defer f.Close()
	leaves, err := f.Binaries(ctx, batch.ColLeaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.ObjectKey, err)
	}
	if int64(len(leaves)) != m.Count {
		return nil, fmt.Errorf("%s: %w: %d leaves, the manifest says %d", m.ObjectKey, ErrLeaves, len(leaves), m.Count)
	}
	root, err := merkletree.Root(leaves)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.ObjectKey, err)
	}
	if hex.EncodeToString(root) != m.MerkleRoot {
		return nil, fmt.Errorf("%s: %w: root %x, the manifest says %s", m.ObjectKey, ErrLeaves, root, m.MerkleRoot)
	}
	return leaves, nil
}

// Checkpoint reads and opens checkpoint seq. It returns the raw bytes too.
func (r Reader) Checkpoint(ctx context.Context, seq uint64) (*manifest.Checkpoint, []byte, error) {
	data, _, err := r.Bucket.Get(ctx, r.Layout.Checkpoint(seq))
	if err != nil {
		return nil, nil, err
	}
	c, _, err := manifest.OpenCheckpoint(data, r.Keys)
	if err != nil {
		return nil, data, fmt.Errorf("checkpoint %d: %w", seq, err)
	}
	if c.Seq != seq {
		return nil, data, fmt.Errorf("checkpoint %d: it says seq %d", seq, c.Seq)
	}
	return c, data, nil
}

// LatestCheckpoint returns the greatest checkpoint sequence number in the
// bucket; ok is false when there is none.
func (r Reader) LatestCheckpoint(ctx context.Context) (seq uint64, ok bool, err error) {
	last, err := r.Bucket.Last(ctx, r.Layout.CheckpointsPrefix(), 20)
	if err != nil || last == "" {
		return 0, false, err
	}
	// Last may return the .tsr of the latest checkpoint: both share its number.
	num := strings.TrimPrefix(last, r.Layout.CheckpointsPrefix())
	if i := strings.IndexByte(num, '.'); i > 0 {
		num = num[:i]
	}
	seq, err = r.Layout.ParseCheckpoint(r.Layout.CheckpointsPrefix() + num + ".checkpoint")
	if err != nil {
		return 0, false, err
	}
	return seq, true, nil
}

// AppendLog appends to seg, in log order, the leaves of the batches a v2
// checkpoint with heads next adds after the previous v2 checkpoint's heads
// prev (see manifest.Appended), reading each batch's leaves with Leaves.
// prev must be the heads of the v2 checkpoint just before: over several
// checkpoints the log order is checkpoint by checkpoint, not the partition
// order one call would give. Every manifest
// on the way must open, follow its predecessor (seq, prev_manifest_sha256)
// and end exactly at the head: the log never includes what does not verify.
func (r Reader) AppendLog(ctx context.Context, seg *tlog.Segment, prev, next []manifest.Head) error {
	spans, err := manifest.Appended(prev, next)
	if err != nil {
		return err
	}
	old := map[int32]manifest.Head{}
	for _, h := range prev {
		old[h.Partition] = h
	}
	for _, sp := range spans {
		start, prevSHA := r.Layout.ManifestPrefix(sp.Partition), ""
		if o, ok := old[sp.Partition]; ok {
			start, prevSHA = o.Manifest, o.SHA256
		}
		var keys []string
		err := r.Bucket.List(ctx, r.Layout.ManifestPrefix(sp.Partition), start, func(in bucket.Info) error {
			if _, _, err := r.Layout.ParseManifest(in.Key); err != nil {
				return nil
			}
			if in.Key > sp.Head.Manifest {
				return errStop
			}
			keys = append(keys, in.Key)
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		want := sp.FromSeq
		err = r.Open(ctx, keys, func(e Entry) error {
			if e.Err != nil {
				return fmt.Errorf("partition %d: %s: %w", sp.Partition, e.Key, e.Err)
			}
			m := e.M
			if m.Partition != sp.Partition || m.Seq != want || m.PrevSHA256 != prevSHA {
				return fmt.Errorf("partition %d: %s is seq %d of partition %d linked to %.12s, want seq %d linked to %.12s (the chain is broken)",
					sp.Partition, e.Key, m.Seq, m.Partition, m.PrevSHA256, want, prevSHA)
			}
			leaves, err := r.Leaves(ctx, m)
			if err != nil {
				return err
			}
			for _, l := range leaves {
				if err := seg.Append(l); err != nil {
					return err
				}
			}
			want, prevSHA = want+1, e.SHA256
			return nil
		})
		if err != nil {
			return err
		}
		if want != sp.ToSeq+1 || prevSHA != sp.Head.SHA256 {
			return fmt.Errorf("partition %d: the chain ends before its head %s (seq %d)", sp.Partition, sp.Head.Manifest, sp.ToSeq)
		}
	}
	return nil
}

var errStop = errors.New("stop")
