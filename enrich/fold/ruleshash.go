package fold

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/gowebpki/jcs"
	"go.yaml.in/yaml/v3"
)

// Canonical returns the rules as RFC 8785 (JCS) JSON bytes, with their YAML
// member names (content.policy, near_miss.budget_pct, …), and the hash every
// record built under them carries: "sha256:<hex>" of those bytes. Any
// change of a rule, the capture policy included, changes the hash; the
// order of YAML keys in the file does not. The pseudonymisation secret is
// never part of them (its key id is: a new secret needs a new key id).
func (r Rules) Canonical() ([]byte, string, error) {
	r.Content.Pseudonymise.Secret = ""
	y, err := yaml.Marshal(r)
	if err != nil {
		return nil, "", fmt.Errorf("rules: %w", err)
	}
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		return nil, "", fmt.Errorf("rules: %w", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("rules: %w", err)
	}
	c, err := jcs.Transform(j)
	if err != nil {
		return nil, "", fmt.Errorf("rules: %w", err)
	}
	sum := sha256.Sum256(c)
	return c, "sha256:" + hex.EncodeToString(sum[:]), nil
}
