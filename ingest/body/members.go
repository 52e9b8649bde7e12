package body

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Members calls fn for each member of the JSON object obj, in order, with the
// member's key (unescaped; valid only during the call) and its value's exact
// bytes. It stops early when fn returns false. obj must be one object (an
// Element of Kind Object); anything else is an error.
func Members(obj []byte, fn func(key, value []byte) bool) error {
	s := scanner{b: obj}
	s.ws()
	if s.i >= len(obj) || obj[s.i] != '{' {
		return errors.New("not a JSON object")
	}
	s.i++
	s.ws()
	if s.i < len(obj) && obj[s.i] == '}' {
		return nil
	}
	var scratch []byte
	for {
		s.ws()
		ks := s.i
		if s.i >= len(obj) || obj[s.i] != '"' {
			return s.errf("want a string key")
		}
		if err := s.str(); err != nil {
			return err
		}
		key := obj[ks+1 : s.i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if err := json.Unmarshal(obj[ks:s.i], &k); err != nil {
				return s.errf("invalid key: %v", err)
			}
			scratch = append(scratch[:0], k...)
			key = scratch
		}
		s.ws()
		if s.i >= len(obj) || obj[s.i] != ':' {
			return s.errf("want ':'")
		}
		s.i++
		s.ws()
		vs := s.i
		if _, err := s.value(2); err != nil {
			return err
		}
		if !fn(key, obj[vs:s.i:s.i]) {
			return nil
		}
		s.ws()
		if s.i >= len(obj) {
			return s.errf("missing '}'")
		}
		switch obj[s.i] {
		case ',':
			s.i++
		case '}':
			return nil
		default:
			return s.errf("want ',' or '}'")
		}
	}
}

// KindOf returns the JSON type of a value's bytes (by its first byte), or 0
// for an empty slice.
func KindOf(v []byte) Kind {
	if len(v) == 0 {
		return 0
	}
	switch c := v[0]; {
	case c == '{':
		return Object
	case c == '[':
		return ArrayKind
	case c == '"':
		return String
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	}
	return Number
}

// Str decodes a JSON string value. ok is false when v is not a string.
func Str(v []byte) (s string, ok bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in), true
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}
