// Package witness anchors the archive outside its bucket with C2SP
// transparency-log witnesses (https://c2sp.org/tlog-witness): independent
// services that remember the largest checkpoint of the archive's global log
// they have seen, cosign a new checkpoint only when a consistency proof shows
// it extends that one (https://c2sp.org/tlog-cosignature), and so refuse a
// log that was rolled back or forked. Whoever can delete from the bucket
// cannot delete from the witnesses.
//
// Both sides are here:
//
//   - Client submits checkpoints (the archiver's cosigner) and asks a
//     witness how far it has seen the log (verify). It speaks to any
//     tlog-witness — tested against filippo.io/torchwood's litewitness — and
//     to Server.
//   - Server is `auditline witness`: a tlog-witness for operators who run
//     their own, with its own storage and key. It is tested with the same
//     protocol checks as litewitness, and litewitness-style clients use it.
//
// Libraries: the note format and signatures are golang.org/x/mod/sumdb/note;
// cosignature/v1 signing and verification, vkeys and checkpoint parsing are
// github.com/transparency-dev/formats (note, log); consistency proofs are
// github.com/transparency-dev/merkle. What is ours is the HTTP exchange of
// tlog-witness (the body of add-checkpoint and its status codes) and the
// witness's storage: transparency-dev/tessera's witness client is internal
// to tessera, and torchwood's witness is an internal package of litewitness
// (SQLite + ssh-agent), so neither can be imported. Both are small and every
// rule of the spec they follow is cited where it is implemented.
package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Witness is one witness as its clients know it.
type Witness struct {
	Name string        // the witness's key name, e.g. "witness.example/w1"
	Key  note.Verifier // its cosignature/v1 verifier
	// VKey is the verifier key as configured (type 0x04 cosignature/v1).
	VKey string
	// URL is the submission prefix: add-checkpoint is POSTed to URL +
	// "/add-checkpoint". Empty for a witness known only by its key (an
	// offline verify checks stored cosignatures only).
	URL string
}

// ParseWitness reads a witness's verifier key — a C2SP vkey of type 0x04
// (Ed25519 cosignature/v1), or 0x01 (Ed25519), which is read as the same
// key's cosignature/v1 verifier — and its URL (may be empty).
func ParseWitness(vkey, url string) (Witness, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return Witness{}, fmt.Errorf("witness key %q: %w (want name+hash+base64 of a type 0x04 cosignature/v1 or 0x01 Ed25519 key)", vkey, err)
	}
	if name, rest, _ := strings.Cut(vkey, "+"); name != "" && rest != "" {
		if k, err := fnote.VKeyToCosignatureV1(vkey); err == nil {
			vkey = k // written as the type 0x04 key the signatures are checked with
		}
	}
	return Witness{Name: v.Name(), Key: v, VKey: vkey, URL: strings.TrimSuffix(url, "/")}, nil
}

// StatusError is a refusal by the witness other than a conflict.
type StatusError struct {
	Witness string
	Code    int
	Body    string
}

func (e *StatusError) Error() string {
	what := map[int]string{
		http.StatusBadRequest:          "malformed request",
		http.StatusForbidden:           "no trusted log signature (is the archive's key configured at the witness?)",
		http.StatusNotFound:            "unknown log origin (add the log to the witness)",
		http.StatusUnprocessableEntity: "the consistency proof does not verify: the log is not an extension of what the witness saw",
	}[e.Code]
	if what == "" {
		what = "unexpected reply"
	}
	return fmt.Sprintf("witness %s: HTTP %d %s: %s", e.Witness, e.Code, what, strings.TrimSpace(e.Body))
}

// ConflictError is a 409 reply: the witness's latest cosigned checkpoint for
// the log has Size leaves, not the old size the client sent (C2SP
// tlog-witness: text/x.tlog.size), or has that size but another root hash.
type ConflictError struct {
	Witness string
	Size    uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness %s: its latest cosigned checkpoint has %d leaves", e.Witness, e.Size)
}

// Client submits checkpoints to witnesses.
type Client struct {
	HTTP *http.Client // nil means a client with a 15 s timeout
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 15 * time.Second}
}

// maxReply bounds a witness reply (signature lines, or a size).
const maxReply = 64 << 10

// AddCheckpoint submits a signed checkpoint note with the consistency proof
// from oldSize (the size of the latest checkpoint the witness cosigned; 0
// with an empty proof when it never cosigned one). It returns the note with
// the witness's cosignature lines appended, after checking that at least one
// of them verifies with w.Key (C2SP tlog-witness: a client ignores
// cosignatures from unknown keys).
func (c *Client) AddCheckpoint(ctx context.Context, w Witness, oldSize uint64, proof [][]byte, checkpoint []byte) ([]byte, error) {
	if w.URL == "" {
		return nil, fmt.Errorf("witness %s: no URL configured", w.Name)
	}
	if len(proof) > 63 {
		return nil, fmt.Errorf("witness %s: a consistency proof of %d hashes (at most 63)", w.Name, len(proof))
	}
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, h := range proof {
		body.WriteString(base64.StdEncoding.EncodeToString(h))
		body.WriteByte('\n')
	}
	body.WriteByte('\n')
	body.Write(checkpoint)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", &body)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.Name, err)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.Name, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.Name, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		s := strings.TrimSuffix(string(reply), "\n")
		size, err := strconv.ParseUint(s, 10, 64)
		if err != nil || strconv.FormatUint(size, 10) != s {
			return nil, &StatusError{Witness: w.Name, Code: resp.StatusCode, Body: string(reply)}
		}
		return nil, &ConflictError{Witness: w.Name, Size: size}
	default:
		return nil, &StatusError{Witness: w.Name, Code: resp.StatusCode, Body: string(reply)}
	}
	cosigned := append(bytes.Clone(checkpoint), reply...)
	n, err := note.Open(cosigned, note.VerifierList(w.Key))
	if err != nil || len(n.Sigs) == 0 {
		return nil, fmt.Errorf("witness %s: the reply carries no valid cosignature by its key: %v", w.Name, err)
	}
	return Cosigned(checkpoint, n)
}

// Cosigned returns checkpoint (a signed note) with only the verified
// signatures of n that checkpoint does not carry yet appended: the form in
// which a cosignature is stored and handed to auditors.
func Cosigned(checkpoint []byte, n *note.Note) ([]byte, error) {
	out := bytes.Clone(checkpoint)
	for _, s := range n.Sigs {
		line := "— " + s.Name + " " + s.Base64 + "\n"
		if !bytes.Contains(checkpoint, []byte(line)) {
			out = append(out, line...)
		}
	}
	return out, nil
}

// Latest asks a witness how far it has seen the log of checkpoint (a signed
// note of that log), the way C2SP tlog-witness offers: by submitting it with
// old size 0. A witness that has cosigned a checkpoint of the log answers 409
// with that checkpoint's size; one that has not cosigns this one (then size is
// checkpoint's own size and cosigned is set). Note that a witness which holds
// size 0 for the log records the checkpoint: this is a submission, as the
// archiver would make it.
func (c *Client) Latest(ctx context.Context, w Witness, checkpoint []byte, checkpointSize uint64) (size uint64, cosigned []byte, err error) {
	cosigned, err = c.AddCheckpoint(ctx, w, 0, nil, checkpoint)
	var ce *ConflictError
	switch {
	case err == nil:
		return checkpointSize, cosigned, nil
	case errors.As(err, &ce):
		return ce.Size, nil, nil
	}
	return 0, nil, err
}
