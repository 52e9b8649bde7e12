// Package ingest is auditline's front door: an HTTP receiver that turns
// webhook bodies into Kafka records and answers 2xx only once Kafka holds
// every one of them (DESIGN.md §4).
//
// Endpoints (docs/ingest.md has curl examples for each):
//
//	POST /v1/litellm         LiteLLM generic_api callbacks → raw.litellm   (scope litellm)
//	POST /v1/litellm/alerts  LiteLLM budget alert webhooks → raw.alerts    (scope alerts)
//	POST /v1/litellm/audit   LiteLLM audit_log_callbacks   → raw.admin     (scope audit)
//	POST /v1/gateway         schemas/gateway-event.v1.json → raw.gateway   (scope gateway)
//	POST /v1/oversight       schemas/oversight-event.v1.json → raw.gateway (scope oversight)
//	POST /v1/litellm/started schemas/request-started.v1.json → raw.litellm (scope litellm; LiteLLM plugin)
//	POST /v1/litellm/config  schemas/gateway-config.v1.json  → raw.admin   (scope litellm; LiteLLM plugin)
//	POST /v1/litellm/attempt schemas/litellm-attempt.v1.json → raw.litellm (scope litellm; LiteLLM plugin)
//
// The guarantee: a 2xx response means every event of the body is durable in
// Kafka (idempotent producer, acks=all), each as its own record whose value is
// the element's original bytes, byte for byte. Anything else means the sender
// must assume nothing was accepted; some records may still land (a produce
// that timed out can complete later), and a resend is de-duplicated
// downstream by the event id header. Nothing authenticated is ever dropped:
// what cannot be used is kept on the DLQ topic, acknowledged before the
// sender hears about it.
//
// Why these choices:
//
//   - Bytes, not re-encoded JSON: the raw bytes are the evidence that every
//     later stage hashes (ingest/body splits bodies without re-marshalling).
//   - Two policies for elements that are JSON but not usable events. LiteLLM
//     never retries a refused batch and cannot fix its payloads, so on the
//     LiteLLM endpoints a bad element goes alone to the DLQ (with its reason)
//     and the rest of the batch is accepted: 200 with a dead_lettered count.
//     auditline's own event schemas (gateway, oversight) are strict: one bad
//     element refuses the whole body with 400 naming the element and the
//     field, and the body is kept whole on the DLQ, because those senders can
//     fix and resend it and half-applied oversight batches would confuse
//     reviewers. Invalid JSON is refused whole on every endpoint (400 with
//     line, column and byte offset), after the body is on the DLQ.
//   - Fast 503s instead of slow 2xx: LiteLLM drops a batch whose POST times
//     out, so a slow or absent broker is answered 503 + Retry-After within
//     ingest.produce_timeout, and a full in-flight budget is answered 503
//     before the body is read. A produce that outlives its request keeps its
//     share of the in-flight budget until Kafka settles it, so memory stays
//     bounded however long the broker is away.
//   - One job per piece: the handler is a chain of decorators (authenticate,
//     accept, limit, signature; handler.go) around a pure planner that
//     decides a body's records and answer from its bytes alone (plan.go,
//     table-tested and fuzzed), and every refusal becomes its status in one
//     place (answer.go: permanent → 4xx with a reason, retryable → 503 +
//     Retry-After).
//   - No de-duplication here: ingest is stateless so that any number of
//     replicas can run behind a load balancer; enrich drops duplicates by
//     event id (DESIGN.md §2).
package ingest
