// Package e2e holds the dashboards' browser tests: real headless Chromium
// (Debian's, driven over CDP by chromedp) against the real dashboard server
// reading the real ClickHouse, with screenshots of every page written to
// artifacts/screenshots/ (git-ignored) for review.
//
// The review loop is tested end to end: the browser records a review, the
// dashboard posts the oversight event to ingest, and the test waits until the
// record's page shows it as a human oversight entry. Which "ingest → Kafka →
// enrich → store" runs behind that POST is chosen by AUDITLINE_E2E_PIPELINE:
//
//   - "real": the auditline binary's ingest, enrich and store stages on the
//     real Kafka and ClickHouse, fed with the LiteLLM example traffic;
//   - "simulated": a stand-in that accepts the POST like ingest (bearer token,
//     schema fields) and writes the next record version the way enrich and
//     store would, so the dashboard side is still tested for real;
//   - "auto" (default): real (every stage is built now); the test log says
//     which ran.
package e2e
