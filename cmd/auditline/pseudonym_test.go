package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/auditline/auditline/privacy/pseudonym"
)

// TestPrintPseudonyms: the CLI prints what enrich writes (the package's
// known vectors), from arguments or stdin, and refuses a missing key
// without printing the secret.
func TestPrintPseudonyms(t *testing.T) {
	pc := pseudonym.Config{KeyID: "k1", Secret: "0123456789abcdef0123456789abcdef"}
	want := "ps:k1:82abd54b6e31842750d92e59e5981962a43ad630734425c6c1a83c28c04be24e\n" +
		"ps:k1:61253d76925890a74dc23aa4d86cca42db81e87a0e459e048c8c592e61395955\n"
	var out bytes.Buffer
	if err := printPseudonyms(&out, nil, pc, []string{"dana.kim@acme.example", "10.12.4.31"}); err != nil || out.String() != want {
		t.Errorf("arguments: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := printPseudonyms(&out, strings.NewReader("dana.kim@acme.example\n10.12.4.31\n"), pc, []string{"-"}); err != nil || out.String() != want {
		t.Errorf("stdin: %v\n%s", err, out.String())
	}
	pc.Secret = "too-short-secret"
	if err := printPseudonyms(&out, nil, pc, []string{"x"}); err == nil || !strings.Contains(err.Error(), "secret: 16 bytes") || strings.Contains(err.Error(), pc.Secret) {
		t.Errorf("short secret: %v", err)
	}
}
