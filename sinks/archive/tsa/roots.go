package tsa

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadRoots reads the PEM certificates in path as the roots tokens must chain
// to. An empty path gives nil (check a token against the certificate it
// carries); a file without any certificate is an error.
func LoadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
