package layout_test

import (
	"fmt"

	"github.com/auditline/auditline/sinks/archive/layout"
)

func Example() {
	l := layout.New("auditline")
	fmt.Println(l.Batch(3, 1000, 2000))
	fmt.Println(l.Manifest(3, 1000))
	fmt.Println(l.Checkpoint(42))
	fmt.Println(l.Timestamp(42))
	fmt.Println(l.Cosignature(42, 0x0badcafe))
	fmt.Println(l.PublicKey("1a2b3c4d5e6f7081"))
	// Output:
	// auditline/batches/p0000000003/00000000000000001000-00000000000000002000.parquet
	// auditline/manifests/p0000000003/00000000000000001000.manifest
	// auditline/checkpoints/00000000000000000042.checkpoint
	// auditline/checkpoints/00000000000000000042.tsr
	// auditline/cosignatures/00000000000000000042.0badcafe.note
	// auditline/keys/1a2b3c4d5e6f7081.pem
}
