package app

import "reflect"

// Redacted returns a copy of c in which every non-empty field tagged
// `secret:"true"` (a string, or each element of a []string) reads
// "<redacted>". c itself is not changed. Only what is tagged is hidden: tag a
// new secret field where it is declared.
func (c *Config) Redacted() *Config {
	out := *c
	redact(reflect.ValueOf(&out).Elem())
	return &out
}

const redactedText = "<redacted>"

// redact replaces the tagged fields of the struct v (addressable) and of the
// structs it holds, copying every slice it changes so that the original's
// backing arrays stay untouched.
func redact(v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		sf, fv := t.Field(i), v.Field(i)
		if !sf.IsExported() {
			continue
		}
		if sf.Tag.Get("secret") == "true" {
			switch {
			case fv.Kind() == reflect.String && fv.Len() > 0:
				fv.SetString(redactedText)
			case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String && fv.Len() > 0:
				cp := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
				for j := range fv.Len() {
					cp.Index(j).SetString(redactedText)
				}
				fv.Set(cp)
			}
			continue
		}
		switch fv.Kind() {
		case reflect.Struct:
			redact(fv)
		case reflect.Slice:
			if fv.Type().Elem().Kind() == reflect.Struct && fv.Len() > 0 {
				cp := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
				reflect.Copy(cp, fv)
				for j := range cp.Len() {
					redact(cp.Index(j))
				}
				fv.Set(cp)
			}
		}
	}
}
