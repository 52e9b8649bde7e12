package verify

import (
	"fmt"
	"time"

	"github.com/auditline/auditline/privacy/retention"
	"github.com/auditline/auditline/sinks/archive/bucket"
)

// checkRetention reports Object Lock problems of one object.
func (v *verifier) checkRetention(key string, p int32, from, to int64, in bucket.Info) {
	ob := v.inv.objects[key]
	if ob != nil && ob.versions > 1 {
		v.rep.fail(Failure{Check: CheckRetention, Key: key, Partition: p, From: from, To: to,
			Detail: fmt.Sprintf("%d versions: the key was written again after sealing (the original version is still locked; read it by version id)", ob.versions)})
	}
	if in.LegalHold && in.LockMode == "" {
		return // under legal hold: cannot be deleted either
	}
	switch {
	case in.LockMode == "":
		v.rep.fail(Failure{Check: CheckRetention, Key: key, Partition: p, From: from, To: to, Detail: "no Object Lock retention"})
	case in.LockMode != v.o.RetentionMode && v.o.RetentionMode == bucket.Compliance:
		v.rep.fail(Failure{Check: CheckRetention, Key: key, Partition: p, From: from, To: to,
			Detail: fmt.Sprintf("retention mode %s, want %s", in.LockMode, v.o.RetentionMode)})
	case !v.o.MinRetention.IsZero() && !v.o.MinRetention.Covers(in.LastModified.Add(-retentionSlack(v.o.MinRetention)), in.RetainUntil):
		v.rep.fail(Failure{Check: CheckRetention, Key: key, Partition: p, From: from, To: to,
			Detail: fmt.Sprintf("retained until %s, want at least %s (%s) after its upload at %s", in.RetainUntil.UTC().Format(time.RFC3339), v.o.MinRetention, v.o.MinRetention.Until(in.LastModified).Format(time.RFC3339), in.LastModified.UTC().Format(time.RFC3339))})
	}
}

// deleted reports whether the latest version of key is a delete marker.
func (v *verifier) deleted(key string) bool {
	ob := v.inv.objects[key]
	return ob != nil && ob.deleted
}

// retentionSlack is how much earlier than last-modified + the period a
// retain-until may end: the archiver sets retain-until from its clock before
// an upload, the bucket stamps last-modified when it ends (and may keep
// retain-until to the second). Five minutes, or half a short test period.
func retentionSlack(p retention.Period) time.Duration {
	return min(5*time.Minute, p.Shortest()/2)
}
