// Package event decodes the source events enrich joins into a Decision: LiteLLM
// StandardLoggingPayloads (and the legacy v1 flat dict), security-gateway
// events, human-oversight events and LiteLLM budget alerts, each from the
// original bytes ingest stored in a raw Kafka record.
//
// Guarantee: decoding never panics and never rejects what LiteLLM may send.
// LiteLLM's payloads are taken leniently, because a record we refuse is a
// request an auditor cannot see:
//
//   - numbers may arrive as JSON numbers, as strings ("0.000197", "None"), or
//     as Python's NaN / Infinity tokens (json.dumps writes them; they decode as
//     unknown, never as a number);
//   - guardrail_information may be one object (older builds) or a list;
//   - the request key may be litellm_call_id (newest), call_id (one branch) or
//     only trace_id;
//   - the legacy v1 dict (generic_api_use_v1) carries every value as Python's
//     str(): its metadata and usage are Python literals / reprs, parsed with
//     a small Python-literal reader (pyliteral.go) and a usage regexp.
//
// Our own schemas (gateway, oversight) were validated by ingest; they are
// decoded strictly enough that a malformed one is an error (it goes to the
// DLQ with its reason), not a guess.
//
// Decoding uses typed wire structs with github.com/go-json-experiment/json
// (the implementation of encoding/json/v2, already used by store and the
// archive): enrich/bench_test.go showed decoding was three quarters of the
// processing time with encoding/json, and the switch doubled the records per
// second per core (docs/enrich.md has the figures). LiteLLM payloads, the
// bulk of the traffic, first take a fast path (fast.go, scan.go): a
// validating byte scanner finds the members enrich reads and hands each raw
// value to the same method the general decoder would call, skipping the rest
// (model_map_information, usage objects, the request and response) at memory
// speed. It declines whatever the two paths could read differently, and a
// fuzz target checks that on every input it takes, it decodes exactly what
// the general path decodes.
package event
