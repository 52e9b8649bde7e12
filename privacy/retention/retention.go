// Package retention computes how long auditline keeps what it keeps.
//
// Legal retention periods are stated in calendar years ("kept for seven
// years"), not hours: 7 × 365 days (61,320 h, the old default) falls one or
// two days short of seven calendar years, because of the leap days in
// between. A Period is therefore calendar years, months and days (applied to
// the date in UTC, the way a calendar counts) or an exact duration, never
// both. Until(t) is the earliest instant that is a full period after t; an
// object uploaded on 29 February is kept until 1 March of the year the
// period ends when that year has no 29 February (Go's time.AddDate
// normalises forward: the safe side).
package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a retention period: calendar years, months and days, or an exact
// duration. The zero Period keeps nothing.
type Period struct {
	Years, Months, Days int
	Exact               time.Duration
}

// Years returns a period of n calendar years.
func Years(n int) Period { return Period{Years: n} }

// Exactly returns a period of exactly d.
func Exactly(d time.Duration) Period { return Period{Exact: d} }

// IsZero reports whether p keeps nothing.
func (p Period) IsZero() bool { return p == Period{} }

// Until returns the earliest instant a full period after t (UTC).
func (p Period) Until(t time.Time) time.Time {
	t = t.UTC()
	if p.Exact != 0 {
		return t.Add(p.Exact)
	}
	return t.AddDate(p.Years, p.Months, p.Days)
}

// Covers reports whether until lasts at least the period from t.
func (p Period) Covers(t, until time.Time) bool { return !until.Before(p.Until(t)) }

// Shortest is the shortest time the period can last (for figures that must
// be durations): its length from the start of the shortest stretch of the
// calendar, i.e. with the fewest leap days.
func (p Period) Shortest() time.Duration {
	if p.Exact != 0 {
		return p.Exact
	}
	// 2100 is no leap year: from 1 March 2096 to 1 March 2103 there is no
	// 29 February at all, the fewest any span can have.
	from := time.Date(2096, 3, 1, 0, 0, 0, 0, time.UTC)
	return p.Until(from).Sub(from)
}

// String returns p in the form Parse reads: "7y", "1y6mo", "30d", "61320h0m0s".
func (p Period) String() string {
	if p.Exact != 0 || p.IsZero() {
		return p.Exact.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int
		unit string
	}{{p.Years, "y"}, {p.Months, "mo"}, {p.Days, "d"}} {
		if u.n != 0 {
			b.WriteString(strconv.Itoa(u.n) + u.unit)
		}
	}
	return b.String()
}

// Parse reads a period: calendar units ("7y", "1y6mo", "90d": years, months,
// days, in that order) or a Go duration ("61320h", "10m").
func Parse(s string) (Period, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Period{}, errors.New("empty retention period")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return Period{}, fmt.Errorf("retention period %q is negative", s)
		}
		return Exactly(d), nil
	}
	var p Period
	rest, last := s, 0
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 6 {
			return Period{}, fmt.Errorf("retention period %q: want calendar units like 7y, 1y6mo, 90d, or a duration like 61320h", s)
		}
		n, _ := strconv.Atoi(rest[:i])
		rest = rest[i:]
		var rank int
		switch {
		case strings.HasPrefix(rest, "mo"):
			p.Months, rank, rest = n, 2, rest[2:]
		case strings.HasPrefix(rest, "y"):
			p.Years, rank, rest = n, 1, rest[1:]
		case strings.HasPrefix(rest, "d"):
			p.Days, rank, rest = n, 3, rest[1:]
		default:
			return Period{}, fmt.Errorf("retention period %q: unknown unit (want y, mo, d, or a Go duration)", s)
		}
		if rank <= last {
			return Period{}, fmt.Errorf("retention period %q: units must come once each, in the order y, mo, d", s)
		}
		last = rank
	}
	return p, nil
}

// MarshalText implements encoding.TextMarshaler (YAML, flags).
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Period) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
