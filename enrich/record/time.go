package record

import (
	"bytes"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Time is an instant with millisecond precision, stored as Unix milliseconds.
// Its JSON form is RFC 3339 in UTC with exactly three fractional digits
// ("2025-11-22T10:41:07.512Z"), or null for the zero value.
type Time int64

const timeLayout = "2006-01-02T15:04:05.000Z"

// TimeOf converts t, truncating to the millisecond.
func TimeOf(t time.Time) Time {
	if t.IsZero() {
		return 0
	}
	return Time(t.UnixMilli())
}

// TimeFromSeconds converts LiteLLM's epoch seconds (a float) to a Time.
func TimeFromSeconds(s float64) Time {
	if s <= 0 {
		return 0
	}
	return Time(s*1000 + 0.5)
}

// Std returns t as a time.Time in UTC (the zero time.Time for zero).
func (t Time) Std() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(t)).UTC()
}

// IsZero reports whether t is unset.
func (t Time) IsZero() bool { return t == 0 }

func (t Time) String() string {
	if t == 0 {
		return ""
	}
	return t.Std().Format(timeLayout)
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t == 0 {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(timeLayout)+2)
	b = append(b, '"')
	b = t.Std().AppendFormat(b, timeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = 0
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("record.Time: want a string, got %s", b)
	}
	v, err := time.Parse(time.RFC3339Nano, string(b[1:len(b)-1]))
	if err != nil {
		return fmt.Errorf("record.Time: %w", err)
	}
	*t = TimeOf(v)
	return nil
}

// UnmarshalJSONFrom is UnmarshalJSON for encoding/json/v2
// (github.com/go-json-experiment/json), which the store and the archive
// decode records with: it reads the token from the decoder instead of having
// the value copied out and scanned a second time (a record has a dozen
// times).
func (t *Time) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case 'n':
		*t = 0
		return nil
	case '"':
		v, err := time.Parse(time.RFC3339Nano, tok.String())
		if err != nil {
			return fmt.Errorf("record.Time: %w", err)
		}
		*t = TimeOf(v)
		return nil
	}
	return fmt.Errorf("record.Time: want a string, got %s", tok.Kind())
}
