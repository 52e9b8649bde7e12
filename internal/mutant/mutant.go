// Package mutant makes the small corruptions of a JSON value that the
// differential tests of the record decoders (enrich/record, the store's
// decode, the archive's canonical check) feed to the decoder under test and
// to its reference, which must then agree.
package mutant

import (
	"bytes"
	"math/rand/v2"
)

// alphabet is what a changed byte becomes: JSON's structural and number
// bytes, the first letters of its literals, a space, and a byte that is not
// UTF-8.
const alphabet = "{}[],:\"\\0123456789.eE+-ntfalsu \xff"

// Byte returns a copy of v with one byte changed, removed or doubled, or v
// cut short, at a place r picks. v must not be empty.
func Byte(r *rand.Rand, v []byte) []byte {
	m := bytes.Clone(v)
	k := r.IntN(len(m))
	switch r.IntN(4) {
	case 0:
		m[k] = alphabet[r.IntN(len(alphabet))]
	case 1:
		m = append(m[:k], m[k+1:]...)
	case 2:
		m = append(m[:k+1], m[k:]...)
	default:
		m = m[:k]
	}
	return m
}
