package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Wire forms of LiteLLM's generic_api log_format.
const (
	FormatJSONArray = "json_array"
	FormatNDJSON    = "ndjson"
	FormatSingle    = "single"
)

// Options configures Run.
type Options struct {
	// URL is ingest's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Token is the bearer token (it needs the litellm scope, plus alerts and
	// gateway when those events are sent).
	Token string
	// Rate is LiteLLM payloads per second; 0 sends as fast as possible.
	Rate float64
	// Duration and Payloads stop the run, whichever comes first (0 = no limit
	// of that kind; at least one must be set).
	Duration time.Duration
	Payloads int
	// Batch is the payloads per body (LiteLLM's DEFAULT_BATCH_SIZE is 512).
	Batch int
	// Concurrency is the number of bodies in flight at once.
	Concurrency int
	// Format is json_array, ndjson or single.
	Format string
	// Generator configures the traffic (seed, mix, gateway share).
	Generator Config
	// Alerts sends the budget alerts the traffic triggers to /v1/litellm/alerts.
	Alerts bool
	// Client is the HTTP client; nil means one with a 30s timeout.
	Client *http.Client
	// Accepted, when set, is called (from one goroutine at a time) with the
	// request keys (litellm_call_id) of every LiteLLM body answered 2xx, so a
	// caller can check later that each accepted request was recorded. A key
	// can be reported more than once (its payloads may span two bodies).
	Accepted func(keys []string)
}

// Summary is what a run did.
type Summary struct {
	Sent     int   // LiteLLM payloads sent
	Accepted int   // … in bodies answered 2xx
	Refused  int   // … in bodies answered otherwise, or lost to transport errors
	Bodies   int   // LiteLLM bodies sent
	Bytes    int64 // LiteLLM body bytes sent
	Status   map[int]int
	Errors   int // transport errors
	// Side traffic.
	AlertsSent, AlertsAccepted   int
	GatewaySent, GatewayAccepted int
	// Records is how many decision records the accepted traffic should
	// produce: distinct request keys with at least one accepted payload.
	Records int
	Elapsed time.Duration
	// Response times of LiteLLM bodies.
	P50, P99, Max time.Duration
}

// PayloadsPerSec is accepted payloads per second.
func (s Summary) PayloadsPerSec() float64 { return float64(s.Accepted) / s.Elapsed.Seconds() }

// MBPerSec is body megabytes (1e6) per second.
func (s Summary) MBPerSec() float64 { return float64(s.Bytes) / 1e6 / s.Elapsed.Seconds() }

func (s Summary) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "payloads: sent %d, accepted %d, refused %d (in %d bodies, %.1f MB)\n", s.Sent, s.Accepted, s.Refused, s.Bodies, float64(s.Bytes)/1e6)
	fmt.Fprintf(&sb, "rate: %.0f payloads/s, %.1f MB/s over %s\n", s.PayloadsPerSec(), s.MBPerSec(), s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&sb, "response time per body: p50 %s, p99 %s, max %s\n", s.P50.Round(time.Microsecond), s.P99.Round(time.Microsecond), s.Max.Round(time.Microsecond))
	var codes []int
	for c := range s.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, s.Status[c]))
	}
	fmt.Fprintf(&sb, "statuses: %s; transport errors: %d\n", strings.Join(parts, " "), s.Errors)
	fmt.Fprintf(&sb, "alerts: sent %d, accepted %d; gateway events: sent %d, accepted %d\n", s.AlertsSent, s.AlertsAccepted, s.GatewaySent, s.GatewayAccepted)
	fmt.Fprintf(&sb, "decision records expected: %d (distinct request keys accepted)\n", s.Records)
	return sb.String()
}

// Body joins payloads into one body of the given wire form, as LiteLLM does.
func Body(format string, payloads [][]byte) []byte {
	var buf bytes.Buffer
	switch format {
	case FormatNDJSON:
		for i, p := range payloads {
			if i > 0 {
				buf.WriteByte('\n') // no trailing newline, as LiteLLM
			}
			buf.Write(p)
		}
	case FormatSingle:
		if len(payloads) == 1 {
			return payloads[0]
		}
		fallthrough
	default:
		buf.WriteByte('[')
		for i, p := range payloads {
			if i > 0 {
				buf.WriteString(", ")
			}
			buf.Write(p)
		}
		buf.WriteByte(']')
	}
	return buf.Bytes()
}

type job struct {
	path string
	body []byte
	n    int      // LiteLLM payloads in it (0 for side traffic)
	keys []string // request keys of those payloads
	side string   // "alert", "gateway" or ""
}

// Run generates traffic and posts it until the limits are reached or ctx
// ends, and returns what happened. Bodies are never retried: LiteLLM does not
// retry a refused batch either, and refusals are what a run measures.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.URL == "" {
		return Summary{}, errors.New("loadgen: URL is required")
	}
	if o.Duration <= 0 && o.Payloads <= 0 {
		return Summary{}, errors.New("loadgen: set a duration or a payload count")
	}
	if o.Batch <= 0 {
		o.Batch = 512
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	switch o.Format {
	case "":
		o.Format = FormatJSONArray
	case FormatJSONArray, FormatNDJSON:
	case FormatSingle:
		o.Batch = 1
	default:
		return Summary{}, fmt.Errorf("loadgen: format %q, want json_array, ndjson or single", o.Format)
	}
	if o.Rate < 0 {
		return Summary{}, fmt.Errorf("loadgen: negative rate")
	}
	gen, err := New(o.Generator)
	if err != nil {
		return Summary{}, err
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency + 2}}
	}
	base := strings.TrimRight(o.URL, "/")
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}

	jobs := make(chan job, o.Concurrency)
	var (
		mu       sync.Mutex
		sum      = Summary{Status: map[int]int{}}
		lat      []time.Duration
		accepted = map[string]bool{}
	)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				t0 := time.Now()
				code, err := post(client, base+j.path, o.Token, j.body)
				d := time.Since(t0)
				mu.Lock()
				ok := err == nil && code/100 == 2
				if err != nil {
					sum.Errors++
				} else {
					sum.Status[code]++
				}
				switch j.side {
				case "alert":
					sum.AlertsSent++
					if ok {
						sum.AlertsAccepted++
					}
				case "gateway":
					sum.GatewaySent++
					if ok {
						sum.GatewayAccepted++
					}
				default:
					lat = append(lat, d)
					sum.Sent += j.n
					sum.Bodies++
					sum.Bytes += int64(len(j.body))
					if ok {
						sum.Accepted += j.n
						for _, k := range j.keys {
							accepted[k] = true
						}
						if o.Accepted != nil {
							o.Accepted(j.keys)
						}
					} else {
						sum.Refused += j.n
					}
				}
				mu.Unlock()
			}
		}()
	}

	start := time.Now()
	var (
		batch   [][]byte
		keys    []string
		gateway [][]byte
		sent    int
	)
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		if o.Rate > 0 { // pace: the body's last payload is due at start + sent/rate
			due := start.Add(time.Duration(float64(sent+len(batch)) / o.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(wait):
				}
			}
		}
		select {
		case <-ctx.Done():
			return false
		case jobs <- job{path: "/v1/litellm", body: Body(o.Format, batch), n: len(batch), keys: keys}:
		}
		sent += len(batch)
		batch, keys = nil, nil
		if len(gateway) > 0 {
			select {
			case <-ctx.Done():
				return false
			case jobs <- job{path: "/v1/gateway", body: Body(FormatJSONArray, gateway), side: "gateway"}:
			}
			gateway = nil
		}
		return true
	}
loop:
	for o.Payloads <= 0 || sent+len(batch) < o.Payloads {
		r := gen.Next()
		for _, p := range r.LiteLLM {
			if o.Payloads > 0 && sent+len(batch) >= o.Payloads {
				break
			}
			batch = append(batch, p)
			keys = append(keys, r.Key)
			if len(batch) == o.Batch && !flush() {
				break loop
			}
		}
		gateway = append(gateway, r.Gateway...)
		if o.Alerts {
			for _, a := range r.Alerts {
				select {
				case <-ctx.Done():
					break loop
				case jobs <- job{path: "/v1/litellm/alerts", body: a, side: "alert"}:
				}
			}
		}
	}
	flush()
	close(jobs)
	wg.Wait()
	sum.Elapsed = time.Since(start)
	sum.Records = len(accepted)
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		sum.P50 = lat[n/2]
		sum.P99 = lat[min(n-1, n*99/100)]
		sum.Max = lat[n-1]
	}
	return sum, nil
}

func post(c *http.Client, url, token string, body []byte) (int, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json") // LiteLLM sends this for every form
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
