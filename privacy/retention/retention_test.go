package retention

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestSevenCalendarYears: seven calendar years from a date end on the same
// date seven years later, whatever leap days lie between; 7 × 365 days fall
// short by the leap days in between.
func TestSevenCalendarYears(t *testing.T) {
	p := Years(7)
	for _, tc := range []struct {
		from, want string
		leapDays   int // 29 Februaries in [from, want)
	}{
		{"2026-12-02T10:00:00Z", "2033-12-02T10:00:00Z", 2},      // 2028, 2032
		{"2027-03-01T00:00:00Z", "2034-03-01T00:00:00Z", 2},      // 2028, 2032
		{"2028-02-28T23:59:59Z", "2035-02-28T23:59:59Z", 2},      // 2028-02-29, 2032
		{"2028-02-29T12:00:00Z", "2035-03-01T12:00:00Z", 2},      // no 29 Feb 2035: the next day, never the day before
		{"2024-02-29T00:00:00Z", "2031-03-01T00:00:00Z", 2},      // 2024, 2028
		{"2096-03-01T00:00:00Z", "2103-03-01T00:00:00Z", 0},      // 2100 is no leap year
		{"2093-01-01T00:00:00Z", "2100-01-01T00:00:00Z", 1},      // 2096 only
		{"2025-06-30T23:30:00-02:00", "2032-07-01T01:30:00Z", 2}, // computed in UTC
	} {
		from := day(tc.from)
		got := p.Until(from)
		if !got.Equal(day(tc.want)) {
			t.Errorf("7y from %s = %s, want %s", tc.from, got.Format(time.RFC3339), tc.want)
		}
		short := from.Add(7 * 365 * 24 * time.Hour)
		if gap := got.Sub(short); gap < time.Duration(tc.leapDays)*24*time.Hour {
			t.Errorf("from %s: 7 × 365 days is %s short, want at least the %d leap days", tc.from, gap, tc.leapDays)
		}
		if !p.Covers(from, got) || p.Covers(from, got.Add(-time.Second)) || (tc.leapDays > 0 && p.Covers(from, short)) {
			t.Errorf("from %s: Covers is wrong at the boundary", tc.from)
		}
	}
	if got, want := p.Shortest(), 7*365*24*time.Hour; got != want {
		t.Errorf("Shortest = %s, want %s (a span without a leap day)", got, want)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Period
		str  string
	}{
		{"7y", Years(7), "7y"},
		{"1y6mo", Period{Years: 1, Months: 6}, "1y6mo"},
		{"90d", Period{Days: 90}, "90d"},
		{"2y3mo4d", Period{Years: 2, Months: 3, Days: 4}, "2y3mo4d"},
		{"61320h", Exactly(61320 * time.Hour), "61320h0m0s"},
		{"1m", Exactly(time.Minute), "1m0s"},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("Parse(%q) = %+v %q, %v; want %+v %q", tc.in, got, got.String(), err, tc.want, tc.str)
		}
	}
	for _, bad := range []string{"", "y", "7", "7w", "6mo1y", "1y1y", "-5h", "7 y", "1234567y"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestYAML(t *testing.T) {
	var c struct {
		P Period `yaml:"period"`
	}
	if err := yaml.Unmarshal([]byte("period: 7y\n"), &c); err != nil || c.P != Years(7) {
		t.Fatalf("7y: %+v %v", c.P, err)
	}
	if err := yaml.Unmarshal([]byte("period: 61320h\n"), &c); err != nil || c.P != Exactly(61320*time.Hour) {
		t.Fatalf("61320h: %+v %v", c.P, err)
	}
	if err := yaml.Unmarshal([]byte("period: 7 years\n"), &c); err == nil {
		t.Fatal("'7 years' accepted")
	}
	out, err := yaml.Marshal(struct {
		P Period `yaml:"period"`
	}{Years(7)})
	if err != nil || string(out) != "period: 7y\n" {
		t.Fatalf("marshal: %q %v", out, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"7y", "1y6mo", "90d", "61320h", "1m", "6mo1y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		q, err := Parse(p.String())
		if (err != nil || q != p) && !p.IsZero() {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, p.String(), q, err)
		}
	})
}
