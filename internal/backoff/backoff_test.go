package backoff

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		p    Policy
		n    int
		r    float64
		want time.Duration
	}{
		{"first wait is Min", Policy{Min: 100 * ms, Max: 10 * time.Second}, 1, 0, 100 * ms},
		{"doubles", Policy{Min: 100 * ms, Max: 10 * time.Second}, 4, 0, 800 * ms},
		{"capped", Policy{Min: 100 * ms, Max: 10 * time.Second}, 8, 0, 10 * time.Second},
		{"stays capped far out", Policy{Min: 100 * ms, Max: 10 * time.Second}, 10_000, 0, 10 * time.Second},
		{"cap not a power of two", Policy{Min: time.Second, Max: time.Minute}, 7, 0, time.Minute},
		{"Max below Min is Min", Policy{Min: time.Second, Max: time.Millisecond}, 3, 0, time.Second},
		{"no jitter ignores r", Policy{Min: 100 * ms, Max: time.Second}, 2, 0.99, 200 * ms},
		{"half jitter, longest", Policy{Min: 100 * ms, Max: time.Second, Jitter: 0.5}, 2, 0, 200 * ms},
		{"half jitter, midway", Policy{Min: 100 * ms, Max: time.Second, Jitter: 0.5}, 2, 0.5, 150 * ms},
		{"half jitter, shortest", Policy{Min: 100 * ms, Max: time.Second, Jitter: 0.5}, 2, 1, 100 * ms},
		{"jitter on the cap", Policy{Min: 100 * ms, Max: time.Second, Jitter: 0.5}, 20, 0.5, 750 * ms},
		{"jitter above 1 is 1", Policy{Min: 100 * ms, Max: time.Second, Jitter: 7}, 1, 0.25, 75 * ms},
		{"negative jitter is 0", Policy{Min: 100 * ms, Max: time.Second, Jitter: -1}, 1, 0.5, 100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Wait(tt.n, tt.r); got != tt.want {
				t.Errorf("Wait(%d, %v) = %s, want %s", tt.n, tt.r, got, tt.want)
			}
		})
	}
}

// fast is a policy whose waits are too short to matter.
var fast = Policy{Min: time.Microsecond, Max: 8 * time.Microsecond}

type call struct {
	attempt int
	err     string
	wait    time.Duration
}

// script returns an op that fails with errs in turn, then succeeds, and a
// Notify that records what it is told.
func script(errs ...error) (op func(context.Context) error, notify Notify, calls *[]call, n *int) {
	n, calls = new(int), new([]call)
	op = func(context.Context) error {
		*n++
		if *n <= len(errs) {
			return errs[*n-1]
		}
		return nil
	}
	notify = func(attempt int, err error, wait time.Duration) {
		*calls = append(*calls, call{attempt, err.Error(), wait})
	}
	return op, notify, calls, n
}

func TestRetry(t *testing.T) {
	boom := errors.New("boom")
	t.Run("succeeds after failures", func(t *testing.T) {
		op, notify, calls, n := script(boom, boom, boom)
		if err := Retry(context.Background(), fast, op, notify); err != nil {
			t.Fatal(err)
		}
		want := []call{{1, "boom", time.Microsecond}, {2, "boom", 2 * time.Microsecond}, {3, "boom", 4 * time.Microsecond}}
		if *n != 4 || fmt.Sprint(*calls) != fmt.Sprint(want) {
			t.Fatalf("%d calls, notified %v, want 4 and %v", *n, *calls, want)
		}
	})
	t.Run("permanent stops at once with the inner error", func(t *testing.T) {
		type myErr struct{ error }
		op, notify, calls, n := script(boom, Permanent(&myErr{boom}))
		err := Retry(context.Background(), fast, op, notify)
		var me *myErr
		if !errors.As(err, &me) || *n != 2 || len(*calls) != 1 {
			t.Fatalf("err %v, %d calls, %d notified", err, *n, len(*calls))
		}
		if _, marked := err.(*permanent); marked {
			t.Fatal("the Permanent mark leaked to the caller")
		}
	})
	t.Run("After waits as asked without advancing", func(t *testing.T) {
		op, notify, calls, _ := script(boom, After(3*time.Millisecond, boom), boom, After(0, boom))
		if err := Retry(context.Background(), fast, op, notify); err != nil {
			t.Fatal(err)
		}
		want := []call{{1, "boom", time.Microsecond}, {2, "boom", 3 * time.Millisecond}, {3, "boom", 2 * time.Microsecond}, {4, "boom", 4 * time.Microsecond}}
		if fmt.Sprint(*calls) != fmt.Sprint(want) {
			t.Fatalf("notified %v, want %v", *calls, want)
		}
	})
	t.Run("context ends during the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := Retry(ctx, Policy{Min: time.Hour, Max: time.Hour}, func(context.Context) error { n++; return boom },
			func(int, error, time.Duration) { cancel() })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, boom) || n != 1 {
			t.Fatalf("err %v after %d calls; want it to wrap context.Canceled and boom after 1", err, n)
		}
		if err.Error() != "context canceled (last error: boom)" {
			t.Errorf("message %q", err)
		}
	})
	t.Run("context ends during op: no wait, no further call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n, notified := 0, 0
		err := Retry(ctx, Policy{Min: time.Hour, Max: time.Hour}, func(ctx context.Context) error {
			n++
			cancel()
			return fmt.Errorf("read: %w", ctx.Err())
		}, func(int, error, time.Duration) { notified++ })
		if err == nil || err.Error() != "read: context canceled" || n != 1 || notified != 0 {
			t.Fatalf("err %v, %d calls, %d notified", err, n, notified)
		}
	})
	t.Run("context already over: op runs once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		op, _, _, n := script(boom, boom)
		if err := Retry(ctx, fast, op, nil); !errors.Is(err, context.Canceled) || *n != 1 {
			t.Fatalf("err %v after %d calls", err, *n)
		}
	})
	t.Run("nil notify", func(t *testing.T) {
		op, _, _, _ := script(boom)
		if err := Retry(context.Background(), fast, op, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPermanentAndAfterOfNil(t *testing.T) {
	if Permanent(nil) != nil || After(time.Second, nil) != nil {
		t.Fatal("a mark on nil is not nil")
	}
}

// ExampleRetry: the shape of every retry loop in auditline.
func ExampleRetry() {
	errNotYet := errors.New("server not up yet")
	tries := 0
	err := Retry(context.Background(), Policy{Min: time.Millisecond, Max: 10 * time.Millisecond, Jitter: 0.5},
		func(ctx context.Context) error {
			if tries++; tries < 3 {
				return errNotYet
			}
			return nil
		},
		func(attempt int, err error, wait time.Duration) { fmt.Println("attempt", attempt, "failed:", err) })
	fmt.Println("done:", err)
	// Output:
	// attempt 1 failed: server not up yet
	// attempt 2 failed: server not up yet
	// done: <nil>
}
