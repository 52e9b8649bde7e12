// Package schemas embeds the JSON Schemas (draft 2020-12) of the events
// auditline defines itself, so that the binary validates against exactly the
// files in this folder: the schema files are the single source, not a Go copy.
package schemas

import "embed"

// FS holds every *.json schema of this folder, by file name.
//
//go:embed *.json
var FS embed.FS

// Schema constants (the "schema" field of each event) and the file that
// defines each. A new version adds a row; none is ever removed, so ingest
// accepts every version it ever accepted.
var Files = map[string]string{
	"auditline.gateway.v1":         "gateway-event.v1.json",
	"auditline.oversight.v1":       "oversight-event.v1.json",
	"auditline.request_started.v1": "request-started.v1.json",
	"auditline.gateway_config.v1":  "gateway-config.v1.json",
	"auditline.approval.v1":        "approval-event.v1.json",
	"auditline.access.v1":          "access-event.v1.json",
	"auditline.attempt.v1":         "litellm-attempt.v1.json",
}
