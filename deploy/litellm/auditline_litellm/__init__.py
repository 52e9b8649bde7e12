"""auditline's LiteLLM plugin: nothing lost at the first hop.

LiteLLM's stock generic_api logger keeps its events in memory and clears its
queue after every POST, so it loses events under ordinary load and whole
batches on any non-2xx (docs/litellm.md §7.1). This plugin replaces it:

* every success and failure payload, and a `request_started` marker written
  by a pre-call hook before the upstream call, is appended to a durable
  local spool (spool.py: append-only segment files with checksums; the
  reason for that format and the fsync policy are in its doc) before the
  hook returns, and leaves the spool only after auditline ingest answered
  2xx. Ingest down for minutes, 5xx, timeouts, SIGTERM or SIGKILL of the
  proxy: what is spooled is delivered once ingest answers (replay on start);
* a body ingest refuses whole (a wrong token) is kept and re-sent with
  back-off and a loud log line every time, never dropped; a damaged spool
  never stops the proxy: the bad bytes go to quarantine/ with a report and
  everything around them is kept;
* every event carries the emitter id (stable per proxy instance and worker
  slot, kept in the spool directory) and a gap-free sequence number, so
  auditline can prove that nothing is missing, or name what is;
* a `gateway_config` event (LiteLLM version, the effective configuration
  without secrets, its hash) is sent with the first event after start and
  after every change of the configuration (lazily, so that a record always
  accounts for its sequence number), and every request event carries that
  hash and number.

Still lost: events not yet appended when the process dies (an outcome whose
hook had not run; the request's marker then makes it a `missing_outcome`
record), the last fsync interval of events on a power loss, and everything
spooled if the proxy's disk is lost. docs/litellm.md has the details,
the measured figures and the operator's runbook.

Install: `pip install deploy/litellm` (or the wheel), or put this folder
next to config.yaml; in both cases configure
`callbacks: ["auditline_litellm.callback.handler"]` (settings.py lists the
environment variables).
"""

__version__ = "0.1.0"
