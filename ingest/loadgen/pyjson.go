package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// node is an order-preserving JSON value, so that a template keeps its key
// order the way Python dicts do.
type node struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string
	vals []*node
	str  string
	num  string // literal text
	b    bool
}

func parse(b []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the template")
	}
	return n, nil
}

func parseValue(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &node{kind: 'o'}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token() // '}'
			return n, err
		case '[':
			n := &node{kind: 'a'}
			for dec.More() {
				v, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, v)
			}
			_, err := dec.Token() // ']'
			return n, err
		}
	case string:
		return &node{kind: 's', str: t}, nil
	case json.Number:
		return &node{kind: 'n', num: string(t)}, nil
	case bool:
		return &node{kind: 'b', b: t}, nil
	case nil:
		return &node{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func (n *node) clone() *node {
	c := *n
	c.keys = append([]string(nil), n.keys...)
	c.vals = make([]*node, len(n.vals))
	for i, v := range n.vals {
		c.vals[i] = v.clone()
	}
	return &c
}

// get returns the member at a dotted path ("metadata.user_api_key_hash"), or nil.
func (n *node) get(path string) *node {
	cur := n
	for _, k := range strings.Split(path, ".") {
		if cur == nil || cur.kind != 'o' {
			return nil
		}
		var next *node
		for i, key := range cur.keys {
			if key == k {
				next = cur.vals[i]
				break
			}
		}
		cur = next
	}
	return cur
}

// set replaces the value at path (the last key is added if missing).
func (n *node) set(path string, v any) {
	parent, last := n, path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		parent, last = n.get(path[:i]), path[i+1:]
	}
	if parent == nil || parent.kind != 'o' {
		return
	}
	nv := value(v)
	for i, k := range parent.keys {
		if k == last {
			parent.vals[i] = nv
			return
		}
	}
	parent.keys = append(parent.keys, last)
	parent.vals = append(parent.vals, nv)
}

// value converts a Go value to a node.
func value(v any) *node {
	switch t := v.(type) {
	case nil:
		return &node{kind: 'z'}
	case *node:
		return t
	case string:
		return &node{kind: 's', str: t}
	case bool:
		return &node{kind: 'b', b: t}
	case int:
		return &node{kind: 'n', num: strconv.Itoa(t)}
	case int64:
		return &node{kind: 'n', num: strconv.FormatInt(t, 10)}
	case float64:
		return &node{kind: 'n', num: pyFloat(t)}
	case []string:
		n := &node{kind: 'a'}
		for _, s := range t {
			n.vals = append(n.vals, &node{kind: 's', str: s})
		}
		return n
	case []any:
		n := &node{kind: 'a'}
		for _, e := range t {
			n.vals = append(n.vals, value(e))
		}
		return n
	case map[string]any:
		panic("loadgen: use *node for objects (maps have no order)")
	}
	panic(fmt.Sprintf("loadgen: unsupported value %T", v))
}

// obj builds an object node from key, value pairs.
func obj(kv ...any) *node {
	n := &node{kind: 'o'}
	for i := 0; i+1 < len(kv); i += 2 {
		n.keys = append(n.keys, kv[i].(string))
		n.vals = append(n.vals, value(kv[i+1]))
	}
	return n
}

// pyFloat formats like Python's float repr (always a decimal point or an
// exponent; NaN and Infinity as json.dumps writes them).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	a := math.Abs(f)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Python writes at least two exponent digits: 2.5e-06.
		if i := strings.IndexAny(s, "+-"); i > 0 && len(s)-i-1 == 1 {
			s = s[:i+1] + "0" + s[i+1:]
		}
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// encode writes n as Python's json.dumps does by default: ", " and ": "
// separators, non-ASCII escaped as \uXXXX (ensure_ascii).
func (n *node) encode(buf *bytes.Buffer) {
	switch n.kind {
	case 'o':
		buf.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				buf.WriteString(", ")
			}
			pyString(buf, k)
			buf.WriteString(": ")
			n.vals[i].encode(buf)
		}
		buf.WriteByte('}')
	case 'a':
		buf.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				buf.WriteString(", ")
			}
			v.encode(buf)
		}
		buf.WriteByte(']')
	case 's':
		pyString(buf, n.str)
	case 'n':
		buf.WriteString(n.num)
	case 'b':
		if n.b {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	default:
		buf.WriteString("null")
	}
}

const hexDigits = "0123456789abcdef"

func pyString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				buf.WriteString(`\"`)
			case '\\':
				buf.WriteString(`\\`)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			case '\b':
				buf.WriteString(`\b`)
			case '\f':
				buf.WriteString(`\f`)
			default:
				if c < 0x20 || c == 0x7f {
					buf.WriteString(`\u00`)
					buf.WriteByte(hexDigits[c>>4])
					buf.WriteByte(hexDigits[c&0xf])
				} else {
					buf.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		write := func(r rune) {
			buf.WriteString(`\u`)
			for sh := 12; sh >= 0; sh -= 4 {
				buf.WriteByte(hexDigits[(r>>sh)&0xf])
			}
		}
		if r >= 0x10000 {
			r -= 0x10000
			write(0xd800 + (r>>10)&0x3ff)
			write(0xdc00 + r&0x3ff)
		} else {
			write(r)
		}
	}
	buf.WriteByte('"')
}
