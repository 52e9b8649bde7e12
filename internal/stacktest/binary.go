package stacktest

import "github.com/auditline/auditline/internal/stacktest/binary"

// Binary returns the path of the auditline binary of this checkout, built
// once per source state and shared by every test package (binary.Auditline).
func Binary(t TB) string {
	t.Helper()
	return binary.Auditline(t)
}

// RepoRoot is the repository's root folder.
func RepoRoot() string { return binary.RepoRoot() }
