package dashboards

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// FuzzParseView feeds arbitrary query strings to the URL parser: it must
// never panic, must reject with a *badRequest (a 400 with a reason), and what
// it accepts must survive a round trip through the links it builds.
func FuzzParseView(f *testing.F) {
	for _, s := range []string{"", "range=7d", "from=2026-11-21&to=2026-11-22&team=a%27b", "cursor=123.abc", "category=near&sampled=1&review=flag",
		"range=2y", "from=x&to=y", "team=a&team=b", "tenant=%00", "cursor=-1.x"} {
		f.Add(s)
	}
	cfg := NewDefaultConfig()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		v, err := parseView(q, now, &cfg)
		if err != nil {
			var br *badRequest
			if !errors.As(err, &br) {
				t.Fatalf("%q: error %v is not a badRequest", raw, err)
			}
			return
		}
		again, err := parseView(v.values(), now, &cfg)
		if err != nil {
			t.Fatalf("%q: the canonical form %q does not parse: %v", raw, v.values().Encode(), err)
		}
		if again.values().Encode() != v.values().Encode() {
			t.Fatalf("%q: round trip changed %q to %q", raw, v.values().Encode(), again.values().Encode())
		}
	})
}
