package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditline/auditline/deploy/testenv"
)

// TestRawEventsTTL: store.raw_events_ttl becomes a table TTL on raw_events
// (set once, changed, removed) on 22.2+, deleting the events older than it at
// the next merge; on 18.16 a TTL is refused with what to do instead.
func TestRawEventsTTL(t *testing.T) { testenv.ForEachClickHouse(t, testRawEventsTTL) }

func testRawEventsTTL(t *testing.T) {
	conn, db, srv := testDB(t)
	ctx := context.Background()
	if !srv.AtLeast(modernSince) {
		if _, err := SetRawEventsTTL(ctx, conn, db, srv, time.Hour); err == nil || !strings.Contains(err.Error(), "DROP PARTITION") {
			t.Fatalf("a TTL on ClickHouse %s: %v, want a refusal that says what to do", srv, err)
		}
		if done, err := SetRawEventsTTL(ctx, conn, db, srv, 0); err != nil || len(done) != 0 {
			t.Fatalf("no TTL on ClickHouse %s: %v %v", srv, done, err)
		}
		return
	}
	ddl := func() string {
		var s string
		if err := conn.QueryRow(ctx, "SHOW CREATE TABLE "+quote(db)+"."+TableRawEvents).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if done, err := SetRawEventsTTL(ctx, conn, db, srv, 0); err != nil || len(done) != 0 {
		t.Fatalf("no TTL asked, none set: %v %v", done, err)
	}
	if done, err := SetRawEventsTTL(ctx, conn, db, srv, time.Hour); err != nil || len(done) != 1 {
		t.Fatalf("set a TTL: %v %v", done, err)
	}
	if !strings.Contains(ddl(), "TTL received_at + toIntervalSecond(3600)") {
		t.Fatalf("raw_events has no TTL of an hour:\n%s", ddl())
	}
	if done, err := SetRawEventsTTL(ctx, conn, db, srv, time.Hour); err != nil || len(done) != 0 {
		t.Fatalf("the same TTL again did %v %v", done, err)
	}
	raws := newRawRows(0, nil)
	now := time.Now()
	for i, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(-time.Minute)} {
		_ = raws.add(&kgo.Record{Topic: "auditline.raw.litellm", Partition: 0, Offset: int64(i), Key: []byte("k"), Value: []byte(`{}`), Timestamp: at})
	}
	if err := insert(ctx, conn, db, TableRawEvents, raws.columns(), raws.values(), ""); err != nil {
		t.Fatal(err)
	}
	testenv.OptimizeFinal(t, conn, db, TableRawEvents)
	if n := count(t, conn, "SELECT count() FROM "+quote(db)+"."+TableRawEvents); n != 1 {
		t.Fatalf("%d raw events after the merge, want 1 (the one older than the TTL deleted)", n)
	}
	if done, err := SetRawEventsTTL(ctx, conn, db, srv, 0); err != nil || len(done) != 1 {
		t.Fatalf("remove the TTL: %v %v", done, err)
	}
	if strings.Contains(ddl(), " TTL ") {
		t.Fatalf("raw_events keeps a TTL after it was removed:\n%s", ddl())
	}
}
