package app

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ApplyEnv applies environment overrides (environ holds KEY=VALUE pairs, as
// os.Environ returns them):
//
//   - the short forms the local stack writes to .data/env:
//     AUDITLINE_KAFKA=host:port[,host:port] → kafka.brokers
//     AUDITLINE_CLICKHOUSE=host:port        → store.clickhouse.addr
//     AUDITLINE_S3=http(s)://KEY:SECRET@host:port → archive.s3.{endpoint,secure,access_key,secret_key}
//     AUDITLINE_S3_BUCKET=name               → archive.s3.bucket
//   - any scalar key by its path: AUDITLINE_INGEST_LISTEN=:8080 sets
//     ingest.listen; lists are comma-separated, durations as "5s".
//
// An empty value of a short form is no override (a test clears the shared
// stack's addresses that way); an empty value of a key path sets it empty.
//
// A variable under a section's prefix (AUDITLINE_INGEST_…, AUDITLINE_ARCHIVE_…,
// …) that names no key is an error, not silently ignored: a misspelt or
// renamed key (AUDITLINE_ARCHIVE_INSTANCE_ID after it moved to
// kafka.instance_id) would otherwise run with the default. Names other
// programs read from the same environment (otherEnv) are let through.
func ApplyEnv(cfg *Config, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "AUDITLINE_") {
			env[k] = v
		}
	}
	if v := env["AUDITLINE_KAFKA"]; v != "" {
		cfg.Kafka.Brokers = strings.Split(v, ",")
	}
	if v := env["AUDITLINE_CLICKHOUSE"]; v != "" {
		cfg.Store.ClickHouse.Addr = strings.Split(v, ",")
	}
	if v := env["AUDITLINE_S3"]; v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return fmt.Errorf("AUDITLINE_S3: want http(s)://ACCESS:SECRET@host:port, got %q", v)
		}
		cfg.Archive.S3.Endpoint = u.Host
		cfg.Archive.S3.Secure = u.Scheme == "https"
		if u.User != nil {
			cfg.Archive.S3.AccessKey = u.User.Username()
			cfg.Archive.S3.SecretKey, _ = u.User.Password()
		}
	}
	if v := env["AUDITLINE_S3_BUCKET"]; v != "" {
		cfg.Archive.S3.Bucket = v
	}
	var errs []error
	used := map[string]bool{}
	walkEnv(reflect.ValueOf(cfg).Elem(), "AUDITLINE", env, used, &errs)
	errs = append(errs, unknownEnv(reflect.TypeFor[Config](), env, used)...)
	return errors.Join(errs...)
}

// otherEnv are AUDITLINE_ names under a section prefix that are not
// configuration keys: read by other programs sharing the environment.
var otherEnv = map[string]bool{
	"AUDITLINE_INGEST_TOKEN": true, // auditline loadgen's and deploy/litellm/start.sh's bearer token
}

// unknownEnv reports the variables under a section's prefix that set no key.
func unknownEnv(t reflect.Type, env map[string]string, used map[string]bool) []error {
	var sections []string
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" && sf.Type.Kind() == reflect.Struct {
			sections = append(sections, "AUDITLINE_"+strings.ToUpper(tag)+"_")
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if used[name] || otherEnv[name] {
			continue
		}
		for _, p := range sections {
			if strings.HasPrefix(name, p) {
				errs = append(errs, fmt.Errorf("%s: no such configuration key (the key path in capitals, e.g. AUDITLINE_INGEST_LISTEN for ingest.listen; auditline config prints every key)", name))
				break
			}
		}
	}
	return errs
}

var durationType = reflect.TypeFor[time.Duration]()

func walkEnv(v reflect.Value, prefix string, env map[string]string, used map[string]bool, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		fv := v.Field(i)
		_, text := fv.Addr().Interface().(encoding.TextUnmarshaler)
		if fv.Kind() == reflect.Struct && !text {
			walkEnv(fv, name, env, used, errs)
			continue
		}
		s, ok := env[name]
		if !ok {
			continue
		}
		used[name] = true
		if err := setFromString(fv, s); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
		}
	}
}

func setFromString(fv reflect.Value, s string) error {
	if u, ok := fv.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s)) // e.g. a retention period, "7y"
	}
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(s)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case fv.CanInt():
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		if fv.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		fv.SetInt(n)
	case fv.CanUint():
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		if fv.OverflowUint(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		fv.SetUint(n)
	case fv.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		fv.SetFloat(f)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var parts []string
		if s != "" {
			parts = strings.Split(s, ",")
		}
		fv.Set(reflect.ValueOf(parts).Convert(fv.Type()))
	default:
		return fmt.Errorf("cannot be set from the environment (type %s); use the config file", fv.Type())
	}
	return nil
}
