// Package backoff is auditline's one retry loop: exponential waits with
// jitter and a cap, for as long as the caller's context allows.
//
// Every stage retries something while a server is away (store: ClickHouse,
// archive: S3, enrich: Kafka reads, ingest: topic creation, dashboards:
// posting to ingest) and none of them may give up on its own: losing nothing
// means waiting, bounded only by the context (shutdown, a request's
// deadline). So Retry has no attempt limit and no elapsed-time limit; the
// caller's context is the only way out besides success and a permanent
// error.
//
// Guarantees:
//
//   - The n-th wait (n = 1, 2, …) is Min·2^(n−1), capped at Max, then
//     jittered down: uniform in [d·(1−Jitter), d]. Waits never exceed Max
//     and never fall below Min·(1−Jitter). A wait asked for with After (a
//     server's Retry-After) is used as it is and does not advance the
//     sequence.
//   - op is never called again once ctx has ended, and a wait ends as soon
//     as ctx does. Retry then returns an error that wraps ctx.Err() and the
//     last error of op (errors.Is finds either), or op's error unchanged
//     when it already is the context's error.
//   - An error marked Permanent ends Retry at once; Retry returns the error
//     inside the mark, so errors.As on the caller's types works as before.
//
// Why not a library: github.com/cenkalti/backoff (v5) is the well-kept one,
// and Retry there stops after 15 minutes unless told otherwise, draws jitter
// on both sides of the interval and reports Retry-After through its own
// error type; each of our six loops would need options to undo the
// defaults, and the result would be longer than this file. The policy here
// is the one every loop already had, written once.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: waits start at Min, double per attempt
// up to Max, and are jittered down by up to the fraction Jitter.
type Policy struct {
	Min time.Duration // first wait; must be > 0
	Max time.Duration // cap; a Max below Min means Min
	// Jitter in [0, 1] is the share of each wait drawn at random, so that
	// replicas that lost a server together do not return together: 0 waits
	// exactly, 0.5 waits between half and all of the computed wait.
	Jitter float64
}

// Wait returns the wait before attempt n+1 after n failures (n ≥ 1), with
// r in [0, 1) the random draw (r = 0 is the longest wait).
func (p Policy) Wait(n int, r float64) time.Duration {
	d, hi := p.Min, max(p.Max, p.Min)
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if j := min(max(p.Jitter, 0), 1); j > 0 {
		d -= time.Duration(float64(d) * j * r)
	}
	return d
}

// Permanent marks err as not worth retrying: Retry returns err at once.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// After marks err as retryable after exactly d (a server's Retry-After),
// instead of the policy's next wait. d ≤ 0 means the policy's wait.
func After(d time.Duration, err error) error {
	if err == nil || d <= 0 {
		return err
	}
	return &after{d, err}
}

type after struct {
	d   time.Duration
	err error
}

func (a *after) Error() string { return a.err.Error() }
func (a *after) Unwrap() error { return a.err }

// Notify is told about each failed attempt (1-based) before Retry waits
// wait: the place to log and count retries.
type Notify func(attempt int, err error, wait time.Duration)

// Retry calls op until it returns nil, returns an error marked Permanent, or
// ctx ends, waiting between attempts as p says. notify may be nil. See the
// package doc for what it returns.
func Retry(ctx context.Context, p Policy, op func(ctx context.Context) error, notify Notify) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	failures := 0 // failures that advanced the exponential sequence
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		var pe *permanent
		if errors.As(err, &pe) {
			return pe.err
		}
		if ctx.Err() != nil {
			return stopped(ctx, err)
		}
		var wait time.Duration
		var af *after
		if errors.As(err, &af) {
			wait, err = af.d, af.err
		} else {
			failures++
			wait = p.Wait(failures, rand.Float64())
		}
		if notify != nil {
			notify(attempt, err, wait)
		}
		if t == nil {
			t = time.NewTimer(wait)
		} else {
			t.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return stopped(ctx, err)
		case <-t.C:
			if ctx.Err() != nil { // both were ready; select picked the timer
				return stopped(ctx, err)
			}
		}
	}
}

// stopped is Retry's answer when ctx ended: its error and op's last one.
func stopped(ctx context.Context, last error) error {
	if errors.Is(last, ctx.Err()) {
		return last
	}
	return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
}
