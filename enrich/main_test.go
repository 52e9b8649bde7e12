package enrich

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the stage's
// Reader, Writer and alert follower must all be gone when Run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
