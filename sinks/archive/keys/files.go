package keys

import (
	"fmt"
	"os"
	"path/filepath"
)

// LoadRing reads trusted public keys: each path is a PEM file
// (SubjectPublicKeyInfo or a note verifier key, as ParsePublic reads) or a
// directory whose *.pem files are all read. A path that yields no key (a
// directory without *.pem files) is an error: an auditor who names a key
// source must not end up trusting nothing, or something else. No paths give
// an empty ring.
func LoadRing(paths ...string) (*Ring, error) {
	ring := NewRing()
	for _, p := range paths {
		files := []string{p}
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			if files, err = filepath.Glob(filepath.Join(p, "*.pem")); err != nil {
				return nil, err
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no *.pem public key in this directory", p)
			}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			pub, err := ParsePublic(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			ring.Add(pub)
		}
	}
	return ring, nil
}
