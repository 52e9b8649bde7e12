package stacktest

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Say prints a progress line at once, with the time (a long suite's log
// shows where it is while it runs).
func Say(format string, args ...any) {
	fmt.Printf("%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// WaitFor polls check every 250ms until it returns nil, and fails t with
// the last error after timeout.
func WaitFor(t TB, what string, timeout time.Duration, check func() error) {
	t.Helper()
	if err := Poll(timeout, 250*time.Millisecond, check); err != nil {
		t.Fatalf("%s: not within %s: %v", what, timeout, err)
	}
}

// Poll calls check every interval until it returns nil (then Poll returns
// nil) or timeout passes (then it returns check's last error). A check that
// returns StopPolling(err) ends the wait at once with err.
func Poll(timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		var stop stopPolling
		if errors.As(err, &stop) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// StopPolling wraps an error that makes Poll and WaitFor give up at once.
func StopPolling(err error) error { return stopPolling{err} }

type stopPolling struct{ err error }

func (s stopPolling) Error() string { return s.err.Error() }
func (s stopPolling) Unwrap() error { return s.err }

// Doer sends HTTP requests; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Ready returns nil when base/readyz answers 200 through client (nil:
// http.DefaultClient).
func Ready(client Doer, base string) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/readyz: %s", base, resp.Status)
	}
	return nil
}

// Tail returns the last n bytes of b.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
