// Package pseudonym replaces identity values (an end user's id, an e-mail, a
// client IP, a key alias, …) by keyed hashes, so that the records auditline
// keeps (the decisions topic, ClickHouse, the archive) name people only by
// pseudonyms, while an analyst who holds the secret can still find every
// record of one person: `auditline pseudonym VALUE` prints the pseudonym to
// query for.
//
// A pseudonym is
//
//	"ps:" + key_id + ":" + hex(HMAC-SHA-256(secret, "auditline.pseudonym.v1" ‖ 0x00 ‖ value))
//
// over the value's exact bytes (no case folding: two spellings are two
// identities, as they were in clear). The key id names the secret, so
// pseudonyms made under different secrets never look alike and a reader
// knows which secret to ask for. The same value gives the same pseudonym in
// every field, so one lookup finds a person whether they appear as the
// gateway subject or as the key's user e-mail. An empty value stays empty
// (nothing to hide, and an empty field must not look like an identity).
//
// The secret is never written anywhere auditline writes: not in the sealed
// rules (fold.Rules.Canonical drops it; the key id and the fields are in
// them), not in `auditline config` (tagged secret), not in logs or metrics.
package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Fields are the record fields that can be pseudonymised, by their JSON
// path in the decision record (docs/decision-record.md).
var Fields = []string{
	"identity.key_hash",     // SHA-256 of the virtual key: stable per key, hence per person for personal keys
	"identity.key_alias",    // often a person's name
	"identity.user_id",      // the key's internal user
	"identity.user_email",   // their e-mail
	"identity.end_user",     // the customer the call was made for
	"identity.requester_ip", // the client IP
	"identity.user_agent",   // can single out a device
	"identity.subject",      // the natural person the gateway authenticated
	"access.actor",          // who looked at the audit trail
	"access.client",         // from which address
}

// MinSecret is the shortest secret accepted, in bytes: a keyed hash of an
// e-mail is only as hard to reverse as its key is to guess.
const MinSecret = 32

const domain = "auditline.pseudonym.v1\x00"

// Prefix starts every pseudonym.
const Prefix = "ps:"

var keyIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// Config is the pseudonymisation configuration (enrich.content.pseudonymise).
// Fields empty: nothing is pseudonymised.
type Config struct {
	// Fields lists the record fields to pseudonymise (Fields names them all).
	Fields []string `yaml:"fields,omitempty"`
	// KeyID names the secret; it is part of every pseudonym and of the
	// sealed rules. Rotate the secret only together with a new key id.
	KeyID string `yaml:"key_id,omitempty"`
	// Secret is the HMAC key (at least MinSecret bytes). Set it from the
	// environment (AUDITLINE_ENRICH_CONTENT_PSEUDONYMISE_SECRET) rather than
	// in the file.
	Secret string `yaml:"secret,omitempty" secret:"true"`
}

// Enabled reports whether any field is pseudonymised.
func (c Config) Enabled() bool { return len(c.Fields) > 0 }

// Validate reports every problem, each prefixed with its YAML key under
// prefix (e.g. "enrich.content.pseudonymise.").
func (c Config) Validate(prefix string) error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	seen := map[string]bool{}
	for _, f := range c.Fields {
		if !slices.Contains(Fields, f) {
			errs = append(errs, fmt.Errorf("%sfields: unknown field %q (known: %s)", prefix, f, strings.Join(Fields, ", ")))
		}
		if seen[f] {
			errs = append(errs, fmt.Errorf("%sfields: %q listed twice", prefix, f))
		}
		seen[f] = true
	}
	if !keyIDPattern.MatchString(c.KeyID) {
		errs = append(errs, fmt.Errorf("%skey_id: %q, want 1-32 of a-z 0-9 . _ - (naming the secret)", prefix, c.KeyID))
	}
	if len(c.Secret) < MinSecret {
		// Never print the secret, not even a short one.
		errs = append(errs, fmt.Errorf("%ssecret: %d bytes, want at least %d", prefix, len(c.Secret), MinSecret))
	}
	return errors.Join(errs...)
}

// Pseudonymiser makes pseudonyms under one key. Safe for concurrent use.
type Pseudonymiser struct {
	keyID  string
	secret []byte
	fields map[string]bool
}

// New returns the Pseudonymiser of c (which must be valid), or nil when c
// pseudonymises nothing. A nil Pseudonymiser changes nothing.
func New(c Config) *Pseudonymiser {
	if !c.Enabled() {
		return nil
	}
	p := &Pseudonymiser{keyID: c.KeyID, secret: []byte(c.Secret), fields: map[string]bool{}}
	for _, f := range c.Fields {
		p.fields[f] = true
	}
	return p
}

// Of returns the pseudonym of value ("" for ""). It ignores the field list:
// it is what `auditline pseudonym` prints.
func (p *Pseudonymiser) Of(value string) string {
	if value == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.secret)
	m.Write([]byte(domain))
	m.Write([]byte(value))
	return Prefix + p.keyID + ":" + hex.EncodeToString(m.Sum(nil))
}

// Field returns value pseudonymised if field is configured, else value. A
// value that already is a pseudonym of this key is returned as it is, so
// applying it twice changes nothing.
func (p *Pseudonymiser) Field(field, value string) string {
	if p == nil || !p.fields[field] || p.Is(value) {
		return value
	}
	return p.Of(value)
}

// Is reports whether s has the form of a pseudonym under p's key id.
func (p *Pseudonymiser) Is(s string) bool {
	rest, ok := strings.CutPrefix(s, Prefix+p.keyID+":")
	if !ok || len(rest) != 64 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil
}

// Has reports whether field is configured.
func (p *Pseudonymiser) Has(field string) bool { return p != nil && p.fields[field] }
