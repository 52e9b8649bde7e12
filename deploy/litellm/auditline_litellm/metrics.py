"""The plugin's metrics: Prometheus text format, with no dependency.

Served on AUDITLINE_PLUGIN_METRICS_HOST:AUDITLINE_PLUGIN_METRICS_PORT+slot
when the port is set (one listener per worker, so N workers need N ports),
and written every few seconds to <slot>/status.json in every case. Names:

  auditline_litellm_spool_bytes                 gauge    bytes held by the spool
  auditline_litellm_spool_max_bytes             gauge    its bound
  auditline_litellm_spool_pending_events        gauge    sequence numbers not yet acknowledged by ingest
  auditline_litellm_events_spooled_total{kind}  counter  outcome, request_started, gateway_config
  auditline_litellm_events_refused_total{reason} counter spool_full, write_error, hook_error: events
                                                         NOT spooled (each one is a sequence gap)
  auditline_litellm_events_delivered_total      counter  acknowledged by ingest (2xx)
  auditline_litellm_posts_total{result}         counter  ok, retry, refused, too_big
  auditline_litellm_quarantined_bytes_total     counter  spool bytes moved to quarantine/
  auditline_litellm_sequence_next               gauge    next sequence number
  auditline_litellm_sequence_acked              gauge    highest acknowledged sequence number
  auditline_litellm_last_delivery_timestamp_seconds gauge
  auditline_litellm_delivering                  gauge    1 while ingest accepts, 0 while failing

Every series carries emitter="<id>" and slot="<n>".
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELP = {
    "spool_bytes": ("gauge", "Bytes held by the spool."),
    "spool_max_bytes": ("gauge", "Bound of the spool in bytes."),
    "spool_pending_events": ("gauge", "Sequence numbers not yet acknowledged by ingest."),
    "events_spooled_total": ("counter", "Events appended to the spool, by kind."),
    "events_refused_total": ("counter", "Events NOT spooled (each is a sequence gap), by reason."),
    "events_delivered_total": ("counter", "Events acknowledged by ingest."),
    "posts_total": ("counter", "POSTs to ingest, by result."),
    "quarantined_bytes_total": ("counter", "Spool bytes moved to quarantine."),
    "sequence_next": ("gauge", "Next sequence number."),
    "sequence_acked": ("gauge", "Highest sequence number acknowledged by ingest."),
    "last_delivery_timestamp_seconds": ("gauge", "When ingest last acknowledged events."),
    "delivering": ("gauge", "1 while ingest accepts events, 0 while sends fail."),
}


def render(samples, labels: dict) -> str:
    """samples: iterable of (name, extra labels dict, value)."""
    base = ",".join('%s="%s"' % (k, str(v).replace("\\", "\\\\").replace('"', '\\"')) for k, v in sorted(labels.items()))
    out, seen = [], set()
    for name, extra, value in samples:
        full = "auditline_litellm_" + name
        if name not in seen:
            typ, text = HELP.get(name, ("untyped", ""))
            out.append("# HELP %s %s" % (full, text))
            out.append("# TYPE %s %s" % (full, typ))
            seen.add(name)
        lab = base + "".join(',%s="%s"' % (k, v) for k, v in sorted(extra.items()))
        out.append("%s{%s} %s" % (full, lab, repr(float(value)) if isinstance(value, float) else value))
    return "\n".join(out) + "\n"


def serve(host: str, port: int, text_fn):
    """Serve text_fn() on GET /metrics in a daemon thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = text_fn().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="auditline-metrics", daemon=True).start()
    return srv
