// Package tsa obtains and checks RFC 3161 time-stamp tokens for archive
// checkpoints.
//
// A token is a TSA's signed statement that a given SHA-256 digest existed at
// a given time (RFC 3161 §2.4.2, TSTInfo.genTime). Stamping each checkpoint
// pins every partition head it names to a time that neither we nor anyone with
// write access to the bucket can move: a batch sealed after the stamp cannot be
// passed off as older.
//
// The ASN.1 request/response handling and the CMS signature check are
// github.com/digitorus/timestamp and github.com/digitorus/pkcs7 (pinned to a
// release that builds with Go 1.26); this package adds the HTTP transport
// (RFC 3161 §3.4: application/timestamp-query → application/timestamp-reply),
// a nonce, the imprint check, and chain validation to the TSA roots an auditor
// trusts with the timeStamping extended key usage. We store the whole
// TimeStampResp (.tsr), which `openssl ts -verify -in X.tsr -data X` reads.
package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
)

// Client asks one TSA for tokens.
type Client struct {
	URL  string
	HTTP *http.Client // nil means a client with a 30 s timeout
}

// maxResponse bounds a TSA response (tokens are a few KiB).
const maxResponse = 1 << 20

// Stamp returns a TimeStampResp (DER) over SHA-256(data), checked: status
// granted, signature valid against the certificate it carries, imprint and
// nonce as requested.
func (c *Client) Stamp(ctx context.Context, data []byte) ([]byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, fmt.Errorf("tsa nonce: %w", err)
	}
	req, err := timestamp.CreateRequest(bytes.NewReader(data), &timestamp.RequestOptions{Hash: crypto.SHA256, Certificates: true, Nonce: nonce})
	if err != nil {
		return nil, fmt.Errorf("tsa request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("tsa request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	cl := c.HTTP
	if cl == nil {
		cl = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := cl.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("tsa %s: HTTP %d", c.URL, resp.StatusCode)
	}
	ts, err := parseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("tsa %s: response: %w", c.URL, err)
	}
	if err := checkImprint(ts, data); err != nil {
		return nil, fmt.Errorf("tsa %s: %w", c.URL, err)
	}
	if ts.Nonce == nil || ts.Nonce.Cmp(nonce) != 0 {
		return nil, fmt.Errorf("tsa %s: nonce mismatch", c.URL)
	}
	return body, nil
}

func checkImprint(ts *timestamp.Timestamp, data []byte) error {
	if ts.HashAlgorithm != crypto.SHA256 {
		return fmt.Errorf("token imprint uses %v, want SHA-256", ts.HashAlgorithm)
	}
	sum := sha256.Sum256(data)
	if !bytes.Equal(ts.HashedMessage, sum[:]) {
		return errors.New("token imprint does not match the data")
	}
	return nil
}

// Token is a checked time-stamp.
type Token struct {
	Time    time.Time // TSTInfo.genTime
	Serial  *big.Int
	Signer  string // subject of the TSA certificate
	Chained bool   // the signer chains to the given roots with timeStamping EKU
}

// Verify checks that tsr (a TimeStampResp) is a granted token over
// SHA-256(data) with a valid signature. With roots, the signing certificate
// must also chain to one of them, valid at genTime, with the timeStamping
// extended key usage; without roots, only the signature against the
// certificate in the token is checked (Chained is false).
func Verify(tsr, data []byte, roots *x509.CertPool) (*Token, error) {
	ts, err := parseResponse(tsr)
	if err != nil {
		return nil, fmt.Errorf("time-stamp token: %w", err)
	}
	if !ts.AddTSACertificate {
		return nil, errors.New("time-stamp token: carries no TSA certificate")
	}
	if err := checkImprint(ts, data); err != nil {
		return nil, fmt.Errorf("time-stamp token: %w", err)
	}
	tok := &Token{Time: ts.Time, Serial: ts.SerialNumber}
	p7, err := parsePKCS7(ts.RawToken)
	if err != nil {
		return nil, fmt.Errorf("time-stamp token: %w", err)
	}
	if s := p7.GetOnlySigner(); s != nil {
		tok.Signer = s.Subject.String()
	}
	if roots != nil {
		err := p7.VerifyWithOpts(x509.VerifyOptions{
			Roots:       roots,
			CurrentTime: ts.Time,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
		})
		if err != nil {
			return nil, fmt.Errorf("time-stamp token: chain: %w", err)
		}
		tok.Chained = true
	}
	return tok, nil
}

// errMalformed is what a parse that panicked returns.
var errMalformed = errors.New("malformed ASN.1 (the parser failed on it)")

// parseResponse is timestamp.ParseResponse, and parsePKCS7 pkcs7.Parse,
// with their panics turned into errors: pkcs7's BER reader indexes past the
// end of some truncated inputs (FuzzVerify found one: index out of range in
// ber.go readObject), and a token is read from a bucket or a TSA, so a
// crafted one must give `verify` an error, not a crash.
func parseResponse(b []byte) (ts *timestamp.Timestamp, err error) {
	defer func() {
		if recover() != nil {
			ts, err = nil, errMalformed
		}
	}()
	return timestamp.ParseResponse(b)
}

func parsePKCS7(b []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() {
		if recover() != nil {
			p7, err = nil, errMalformed
		}
	}()
	return pkcs7.Parse(b)
}
