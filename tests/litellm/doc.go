// Package litellm is the LiteLLM completeness suite (issue 14, build tag
// litellm, run by scripts/litellm-suite.sh from scripts/test.sh): the real
// LiteLLM proxy started by deploy/litellm/start.sh, auditline's plugin
// (deploy/litellm/auditline_litellm) posting through a fault gate to the
// real pipeline (internal/stacktest: ingest, enrich, store, archive on the
// shared Kafka, ClickHouse and MinIO), and the completeness ledger read back
// from ClickHouse (package ledger) and from the sealed archive
// (auditline verify).
//
// Phases, in one test so that the proxies and the stack are started once:
// the stock generic_api callback and the plugin under the same load (the
// stock callback's missing count is printed; the plugin must have none and
// no sequence gap), ingest stopped mid-load, ingest answering 503 and
// timing out, the proxy SIGKILLed mid-load and restarted on its spool, one
// of two workers SIGKILLed, a full spool, a corrupted spool.
package litellm
