// Package bucket is the archive's only S3 code: write-once puts under Object
// Lock, reads that report each object's retention, and listings in key order.
//
// Durability: Put returns nil only once the S3 server has stored the object
// (a PUT is atomic: the object then exists whole, with its retention, or not at
// all). Objects are never overwritten: every put carries If-None-Match: *
// (RFC 9110 §13.1.2), which S3 and MinIO honour on PutObject, so a second
// writer of the same key gets ErrExists instead of a new version. Nothing here
// deletes; the only delete in the code base is in tests, on GOVERNANCE test
// buckets.
//
// Errors are classified once, here: ErrExists and ErrNotFound are expected
// outcomes; Permanent reports errors a retry cannot fix (access denied, no such
// bucket, bucket without Object Lock); everything else (network, 5xx, slow
// down) is retryable.
package bucket

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config is how to reach one bucket.
type Config struct {
	Endpoint  string // host:port
	Secure    bool
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	CAFile    string // PEM roots for the server's certificate (https); empty: the system roots
}

// Mode is an Object Lock retention mode.
type Mode string

const (
	Compliance Mode = "COMPLIANCE" // nobody, not even the root account, can delete or shorten it
	Governance Mode = "GOVERNANCE" // users with s3:BypassGovernanceRetention can; for tests
)

// Lock is the retention an object is written with.
type Lock struct {
	Mode  Mode
	Until time.Time
}

var (
	// ErrExists is returned by Put when the key already exists.
	ErrExists = errors.New("object already exists")
	// ErrNotFound is returned when a key does not exist (or its latest version
	// is a delete marker).
	ErrNotFound = errors.New("object not found")
)

// Permanent reports whether err cannot be fixed by retrying.
func Permanent(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	switch er.Code {
	case "AccessDenied", "NoSuchBucket", "InvalidBucketName", "InvalidAccessKeyId",
		"SignatureDoesNotMatch", "InvalidRequest", "InvalidArgument", "MethodNotAllowed",
		"ObjectLockConfigurationNotFoundError", "InvalidRetentionPeriod":
		return true
	}
	return false
}

// Bucket is one S3 bucket.
type Bucket struct {
	cl   *minio.Client
	core minio.Core
	name string
}

// New connects to the bucket (no request is made).
func New(cfg Config) (*Bucket, error) {
	opts := &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.Secure,
		Region: cfg.Region,
	}
	if cfg.CAFile != "" {
		tr, err := caTransport(cfg.CAFile, cfg.Secure)
		if err != nil {
			return nil, err
		}
		opts.Transport = tr
	}
	cl, err := minio.New(cfg.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	return &Bucket{cl: cl, core: minio.Core{Client: cl}, name: cfg.Bucket}, nil
}

// Name returns the bucket name.
func (b *Bucket) Name() string { return b.name }

// Client exposes the minio client (tests use it to tamper with objects).
func (b *Bucket) Client() *minio.Client { return b.cl }

// CheckObjectLock returns an error unless the bucket exists with Object Lock
// enabled.
func (b *Bucket) CheckObjectLock(ctx context.Context) error {
	enabled, _, _, _, err := b.cl.GetObjectLockConfig(ctx, b.name)
	if err != nil {
		return fmt.Errorf("bucket %s: object lock configuration: %w", b.name, err)
	}
	if enabled != "Enabled" {
		return fmt.Errorf("bucket %s: object lock is not enabled (it can only be enabled when the bucket is created)", b.name)
	}
	return nil
}

// Put writes data at key once, with the given retention. It returns ErrExists
// (wrapped) when the key exists. The body is sent with its SHA-256 and MD5 so
// that the server rejects a corrupted upload.
func (b *Bucket) Put(ctx context.Context, key string, data []byte, contentType string, lock Lock) error {
	opts := minio.PutObjectOptions{
		ContentType:      contentType,
		Mode:             minio.RetentionMode(lock.Mode),
		RetainUntilDate:  lock.Until.UTC(),
		SendContentMd5:   true,
		DisableMultipart: true,
		UserMetadata:     map[string]string{"sha256": fmt.Sprintf("%x", sha256.Sum256(data))},
	}
	if lock.Mode == "" {
		opts.Mode, opts.RetainUntilDate = "", time.Time{}
	}
	opts.SetMatchETagExcept("*")
	_, err := b.cl.PutObject(ctx, b.name, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		var er minio.ErrorResponse
		if errors.As(err, &er) && (er.Code == "PreconditionFailed" || er.StatusCode == http.StatusPreconditionFailed) {
			return fmt.Errorf("put %s: %w", key, ErrExists)
		}
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Info describes one object version.
type Info struct {
	Key          string
	Size         int64
	VersionID    string
	LastModified time.Time
	LockMode     Mode      // "" when the object has no retention
	RetainUntil  time.Time // zero when the object has no retention
	LegalHold    bool
	IsLatest     bool
	DeleteMarker bool
}

func infoOf(oi minio.ObjectInfo) Info {
	in := Info{
		Key: oi.Key, Size: oi.Size, VersionID: oi.VersionID, LastModified: oi.LastModified,
		IsLatest: oi.IsLatest, DeleteMarker: oi.IsDeleteMarker,
	}
	if oi.Metadata != nil {
		in.LockMode = Mode(oi.Metadata.Get("X-Amz-Object-Lock-Mode"))
		if t, err := time.Parse(time.RFC3339, oi.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date")); err == nil {
			in.RetainUntil = t
		}
		in.LegalHold = strings.EqualFold(oi.Metadata.Get("X-Amz-Object-Lock-Legal-Hold"), "ON")
	}
	return in
}

// Get reads a whole object (its latest version) and reports its retention.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, Info, error) {
	obj, err := b.cl.GetObject(ctx, b.name, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, b.readErr(key, err)
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err != nil {
		return nil, Info{}, b.readErr(key, err)
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, Info{}, b.readErr(key, err)
	}
	if int64(len(data)) != st.Size {
		return nil, Info{}, fmt.Errorf("get %s: read %d bytes of %d", key, len(data), st.Size)
	}
	return data, infoOf(st), nil
}

// Stat reports an object's size and retention without reading it.
func (b *Bucket) Stat(ctx context.Context, key string) (Info, error) {
	st, err := b.cl.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, b.readErr(key, err)
	}
	return infoOf(st), nil
}

// ReaderAt is a random-access view of one object: Parquet readers fetch only
// the footer and the column chunks they need, with ranged GETs.
type ReaderAt interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
}

// Open returns a ranged reader of key and its size.
func (b *Bucket) Open(ctx context.Context, key string) (ReaderAt, Info, error) {
	obj, err := b.cl.GetObject(ctx, b.name, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, b.readErr(key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, Info{}, b.readErr(key, err)
	}
	return obj, infoOf(st), nil
}

func (b *Bucket) readErr(key string, err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) && (er.Code == "NoSuchKey" || er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket") {
		return fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	return fmt.Errorf("get %s: %w", key, err)
}

// List calls fn for every key under prefix after startAfter, in key order.
func (b *Bucket) List(ctx context.Context, prefix, startAfter string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range b.cl.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: prefix, StartAfter: startAfter, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, oi.Err)
		}
		if err := fn(infoOf(oi)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// ListVersions calls fn for every version and delete marker under prefix, in
// key order (newest version of a key first).
func (b *Bucket) ListVersions(ctx context.Context, prefix string, fn func(Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for oi := range b.cl.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true, WithMetadata: true}) {
		if oi.Err != nil {
			return fmt.Errorf("list versions %s: %w", prefix, oi.Err)
		}
		if err := fn(infoOf(oi)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Folders returns the common prefixes one level below prefix ("a/b/" for
// a/b/c when prefix is "a/").
func (b *Bucket) Folders(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	token := ""
	for {
		res, err := b.core.ListObjectsV2(b.name, prefix, "", token, "/", 1000)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, cp := range res.CommonPrefixes {
			out = append(out, cp.Prefix)
		}
		if !res.IsTruncated || res.NextContinuationToken == "" {
			return out, nil
		}
		token = res.NextContinuationToken
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// First returns the first key under prefix after startAfter, or "" if none.
func (b *Bucket) First(ctx context.Context, prefix, startAfter string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	res, err := b.core.ListObjectsV2(b.name, prefix, startAfter, "", "", 1)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", prefix, err)
	}
	if len(res.Contents) == 0 {
		return "", nil
	}
	return res.Contents[0].Key, nil
}

// Last returns the greatest key under prefix, or "" when there is none. Keys
// under prefix must be a fixed-width decimal number (digits long) followed by
// anything; Last binary-searches the number with one-key listings, so it costs
// about 64 requests however many objects the prefix holds.
func (b *Bucket) Last(ctx context.Context, prefix string, digits int) (string, error) {
	bound := func(n uint64) string { // every key numbered below n sorts at or before it
		if n == 0 {
			return ""
		}
		s := fmt.Sprintf("%0*d", digits, n-1)
		return prefix + s + "~"
	}
	first, err := b.First(ctx, prefix, "")
	if err != nil || first == "" {
		return "", err
	}
	// Invariant: some key is numbered >= lo; none is numbered >= hi.
	lo, hi := uint64(0), uint64(1)<<63
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		k, err := b.First(ctx, prefix, bound(mid))
		if err != nil {
			return "", err
		}
		if k != "" {
			lo = mid
		} else {
			hi = mid
		}
	}
	// The last key is the greatest one numbered lo: list them all (usually one).
	last := ""
	err = b.List(ctx, prefix, bound(lo), func(in Info) error { last = in.Key; return nil })
	return last, err
}

// caTransport is minio-go's default transport trusting only the roots in
// caFile (a private CA).
func caTransport(caFile string, secure bool) (*http.Transport, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("s3 ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3 ca_file: %s holds no PEM certificate", caFile)
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}
