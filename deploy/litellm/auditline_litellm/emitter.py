"""The emitter: one per proxy worker process. It owns a spool slot, numbers
every event, and runs the sender thread that delivers the spool to ingest.

Guarantees (the package doc, __init__.py, has the whole picture):

* An event is appended to the spool, with its sequence number, before the
  hook that produced it returns; it leaves the spool only after ingest
  answered 2xx for a body holding it.
* Sequence numbers are gap-free per emitter: an event that could not be
  spooled (spool full, disk error, a hook error) still consumes its number,
  so the loss is visible in auditline as a gap.
* Delivery is at-least-once and in sequence order; ingest's event ids make
  re-sends harmless.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time

from . import __version__, slots
from . import metrics as metrics_mod
from .canonical import config_hash
from .spool import (
    KIND_ATTEMPT,
    KIND_CONFIG,
    KIND_NAMES,
    KIND_OUTCOME,
    KIND_STARTED,
    Spool,
    SpoolFull,
    SpoolWriteError,
)
from .transport import OK, REFUSED, RETRY, TOO_BIG, Transport

log = logging.getLogger("auditline_litellm")

SEND_ORDER = (KIND_CONFIG, KIND_STARTED, KIND_ATTEMPT, KIND_OUTCOME)


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def _default_dumps(obj) -> bytes:
    return json.dumps(obj, default=str).encode("utf-8")


class Emitter:
    def __init__(self, settings, config_source=None, dumps=_default_dumps, transport=None, clock=time.time):
        self.s = settings
        self.config_source = config_source  # () -> dict | None
        self.dumps = dumps
        self.clock = clock
        self.transport = transport or Transport(
            {"Authorization": settings.auth} if settings.auth else {}, settings.timeout, "auditline-litellm/" + __version__
        )
        self.slot = None
        self.spool = None
        self.pid = 0
        self.config_hash = ""
        self.config_seq = 0
        self.config_doc = None
        self._pending_config = None  # (hash, doc) noticed, announced by the next event
        self._config_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self._metrics_srv = None
        # counters
        self.spooled = {KIND_OUTCOME: 0, KIND_STARTED: 0, KIND_CONFIG: 0, KIND_ATTEMPT: 0}
        self.refused = {"spool_full": 0, "write_error": 0, "hook_error": 0}
        self.delivered = 0
        self.posts = {OK: 0, RETRY: 0, REFUSED: 0, TOO_BIG: 0}
        self.last_delivery = 0.0
        self.delivering = True
        self.last_error = ""
        self._failing_since = 0.0
        self._last_loud = 0.0
        self._last_full_log = 0.0
        self._max_events = settings.max_events

    # ---- lifecycle ------------------------------------------------------

    def start(self) -> None:
        """Claim a slot, recover its spool, start the sender. Idempotent per process."""
        if self.spool is not None and self.pid == os.getpid():
            return
        self.pid = os.getpid()
        self.slot = slots.claim(self.s.spool_dir)
        self.spool = Spool(
            self.slot.path,
            slot=self.slot.index,
            max_bytes=self.s.max_bytes,
            segment_bytes=self.s.segment_bytes,
            fsync=self.s.fsync,
            clock=self.clock,
        )
        r = self.spool.report
        log.info(
            "auditline: emitter %s (slot %d, pid %d) spool %s: %d events to replay, next seq %d%s",
            self.spool.emitter,
            self.slot.index,
            self.pid,
            self.slot.path,
            self.spool.pending(),
            self.spool.next_seq,
            ", new emitter id" if r.new_emitter else "",
        )
        for name, size, why in r.quarantined:
            log.error("auditline: spool damage quarantined: %s (%d bytes): %s", name, size, why)
        if r.cursor_reset:
            log.error("auditline: spool cursor of %s was unreadable; everything spooled is sent again", self.slot.path)
        if self.s.metrics_port:
            try:
                self._metrics_srv = metrics_mod.serve(
                    self.s.metrics_host, self.s.metrics_port + self.slot.index, self.metrics_text
                )
            except OSError as e:
                log.error(
                    "auditline: metrics listener on %s:%d failed: %s",
                    self.s.metrics_host,
                    self.s.metrics_port + self.slot.index,
                    e,
                )
        self._thread = threading.Thread(target=self._run, name="auditline-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.spool is not None:
            self.write_status()
            self.spool.close()
        if self.slot is not None:
            self.slot.release()
        if self._metrics_srv is not None:
            self._metrics_srv.shutdown()
        self.transport.close()

    # ---- events (called from LiteLLM hooks) -----------------------------

    def _append(self, kind: int, build) -> int:
        try:
            seq = self.spool.append(kind, build)
        except SpoolFull as e:
            self.refused["spool_full"] += 1
            now = self.clock()
            if now - self._last_full_log >= 10:
                self._last_full_log = now
                log.error(
                    "auditline: SPOOL FULL (%s, %d bytes): event seq %d (%s) NOT recorded; %d refused so far. "
                    "Ingest is not keeping up or is unreachable; these losses show as sequence gaps.",
                    self.slot.path,
                    self.spool.bytes,
                    e.seq,
                    KIND_NAMES.get(kind, kind),
                    self.refused["spool_full"],
                )
            return 0
        except SpoolWriteError as e:
            self.refused["write_error"] += 1
            log.error(
                "auditline: cannot spool event seq %d (%s): %s; it shows as a sequence gap", e.seq, KIND_NAMES.get(kind, kind), e
            )
            return 0
        self.spooled[kind] += 1
        self._wake.set()
        return seq

    def hook_failed(self, where: str, err: BaseException) -> None:
        """A hook could not even build its event: counted and logged; the proxy goes on."""
        self.refused["hook_error"] += 1
        log.exception("auditline: %s failed: %s", where, err)

    def ensure_config(self) -> None:
        """Announce the configuration the next event runs under, if it is not
        announced yet.

        Announcements are lazy: a gateway_config event is spooled right before
        the first event that runs under it (a marker, attempt or outcome, which
        carries its number as config_seq), never on its own. So every
        gateway_config number is accounted for by a record (ledger rule:
        emitter.config_seq), and a worker that starts, or sees its
        configuration change, and stops before serving anything leaves no
        number behind that no record can explain (a false gap). The sender
        thread only notices changes (check_config) and leaves them pending.
        """
        with self._config_lock:
            pending = self._pending_config
            announced = self.config_hash
        if pending is None and not announced:
            # the first event came before the sender thread looked
            self.check_config()
        self._announce()

    def check_config(self) -> bool:
        """Notice a change of the effective configuration: the next event
        announces it (ensure_config). Returns whether a change is pending."""
        if self.config_source is None:
            return False
        doc = self.config_source()
        if doc is None:
            return False
        h = config_hash(doc)
        with self._config_lock:
            if h == self.config_hash:
                self._pending_config = None  # changed and changed back: nothing to announce
                return False
            if self._pending_config is not None and self._pending_config[0] == h:
                return True
            self._pending_config = (h, doc)
        return True

    def _announce(self) -> None:
        """Spool the pending gateway_config event, if any."""
        with self._config_lock:
            if self._pending_config is None:
                return
            h, doc = self._pending_config
            self._pending_config = None
            if h == self.config_hash:
                return
            reason = "change" if self.config_hash else "start"
            emitter = self.spool.emitter

            def build(seq):
                return self.dumps(
                    {
                        "schema": "auditline.gateway_config.v1",
                        "event_id": "%s/%d" % (emitter, seq),
                        "emitter": emitter,
                        "seq": seq,
                        "occurred_at": rfc3339(self.clock()),
                        "reason": reason,
                        "config_hash": h,
                        "litellm_version": doc.get("litellm_version", ""),
                        "plugin_version": __version__,
                        "slot": self.slot.index,
                        "pid": self.pid,
                        "config": doc,
                    }
                )

            seq = self._append(KIND_CONFIG, build)
            previous = self.config_hash
            self.config_hash, self.config_seq, self.config_doc = h, seq, doc
        if previous:
            log.warning("auditline: gateway configuration changed: %s -> %s (gateway_config seq %d)", previous, h, seq)
        else:
            log.info("auditline: gateway configuration %s announced (seq %d)", h, seq)

    def started(self, call_id: str, key_hash: str, requested_model: str, call_type: str, stream: bool, route: str) -> int:
        self.ensure_config()
        emitter = self.spool.emitter
        h, cs = self.config_hash, self.config_seq

        def build(seq):
            return self.dumps(
                {
                    "schema": "auditline.request_started.v1",
                    "event_id": "%s/%d" % (emitter, seq),
                    "emitter": emitter,
                    "seq": seq,
                    "request_key": call_id,
                    "occurred_at": rfc3339(self.clock()),
                    "config_hash": h,
                    "config_seq": cs,
                    "call_type": call_type or "",
                    "requested_model": requested_model or "",
                    "key_hash": key_hash or "",
                    "stream": bool(stream),
                    "route": route or "",
                }
            )

        return self._append(KIND_STARTED, build)

    def outcome(self, payload: dict, attempts: int | None = None) -> int:
        """attempts: how many attempt events of the request were spooled before
        this payload (attempts.py); None leaves it out (enrich then knows only
        the payloads)."""
        self.ensure_config()
        emitter = self.spool.emitter
        h, cs = self.config_hash, self.config_seq

        def build(seq):
            p = dict(payload)
            p["auditline"] = {"emitter": emitter, "seq": seq, "config_hash": h, "config_seq": cs}
            if attempts is not None:
                p["auditline"]["attempts"] = attempts
            return self.dumps(p)

        return self._append(KIND_OUTCOME, build)

    def attempt(self, doc: dict) -> int:
        """One upstream call of a request (schemas/litellm-attempt.v1.json); doc
        holds its fields, start_time and end_time as Unix seconds."""
        self.ensure_config()
        emitter = self.spool.emitter
        h, cs = self.config_hash, self.config_seq

        def build(seq):
            d = dict(doc)
            d.update(
                {
                    "schema": "auditline.attempt.v1",
                    "event_id": "%s/%d" % (emitter, seq),
                    "emitter": emitter,
                    "seq": seq,
                    "config_hash": h,
                    "config_seq": cs,
                    "start_time": rfc3339(doc["start_time"]),
                    "end_time": rfc3339(doc["end_time"]),
                }
            )
            return self.dumps(d)

        return self._append(KIND_ATTEMPT, build)

    # ---- the sender thread ----------------------------------------------

    def _run(self) -> None:
        pos = self.spool.start()
        next_sync = next_config = next_status = next_orphans = 0.0
        backoff = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_sync:
                    self.spool.sync()
                    next_sync = now + self.s.fsync_interval
                if now >= next_config:
                    next_config = now + (self.s.config_interval if self.config_hash or self._pending_config else 0.5)
                    self.check_config()
                if now >= next_status:
                    self.write_status()
                    next_status = now + 2.0
                sent, pos, verdict = self._send_some(self.spool, pos)
                if verdict in (RETRY, REFUSED):
                    cap = self.s.retry_max if verdict == RETRY else self.s.refused_retry_max
                    start = 0.2 if verdict == RETRY else 5.0
                    backoff = min(cap, max(start, backoff * 2))
                    self._stop.wait(backoff * (0.75 + random.random() / 2))
                    continue
                backoff = 0.0
                if sent:
                    continue
                if now >= next_orphans:
                    next_orphans = now + 30.0
                    self._drain_orphans()
                self._wake.wait(0.25)
                self._wake.clear()
            except Exception as e:  # never let the thread die: the spool keeps everything
                log.exception("auditline: sender error (events stay spooled): %s", e)
                self._stop.wait(1.0)
        self.spool.sync()

    def _send_some(self, spool, pos):
        """Send one batch from pos. Returns (events sent, new pos, verdict or None)."""
        recs, nxt, last = spool.read(pos, self._max_events, self.s.max_post_bytes)
        if not recs:
            if last:
                spool.ack(last)  # tombstones only
            return 0, nxt, None
        if self.s.linger and len(recs) < self._max_events and not self._stop.is_set():
            # a small batch: give concurrent requests a moment to join it
            self._stop.wait(self.s.linger)
            more, nxt2, last2 = spool.read(pos, self._max_events, self.s.max_post_bytes)
            if len(more) >= len(recs):
                recs, nxt, last = more, nxt2, last2
        groups = {}
        for r in recs:
            groups.setdefault(r.kind, []).append(r.payload)
        urls = {
            KIND_CONFIG: self.s.config_endpoint,
            KIND_STARTED: self.s.started_endpoint,
            KIND_ATTEMPT: self.s.attempt_endpoint,
            KIND_OUTCOME: self.s.endpoint,
        }
        for kind in SEND_ORDER:
            items = groups.get(kind)
            if not items:
                continue
            ans = self.transport.post(urls[kind], b"[" + b",".join(items) + b"]")
            self.posts[ans.kind] += 1
            if ans.kind == OK:
                continue
            if ans.kind == TOO_BIG and len(recs) > 1:
                self._max_events = max(1, len(recs) // 2)
                log.warning(
                    "auditline: ingest refused a body of %d events as too large (413); sending at most %d per POST",
                    len(recs),
                    self._max_events,
                )
                return 0, pos, None
            verdict = REFUSED if ans.kind == TOO_BIG else ans.kind
            self._failed(verdict, ans, urls[kind], spool)
            return 0, pos, verdict
        spool.ack(last)
        self.delivered += len(recs)
        self.last_delivery = self.clock()
        if not self.delivering:
            log.warning(
                "auditline: ingest accepts events again after %.0fs of failures; %d events were waiting",
                time.monotonic() - self._failing_since,
                spool.pending() + len(recs),
            )
        self.delivering = True
        self.last_error = ""
        if self._max_events < self.s.max_events:
            self._max_events = min(self.s.max_events, self._max_events * 2)
        return len(recs), nxt, None

    def _failed(self, verdict, ans, url, spool) -> None:
        now = time.monotonic()
        if self.delivering:
            self._failing_since = now
            self._last_loud = 0.0
        self.delivering = False
        what = ("HTTP %d %s" % (ans.status, ans.detail)) if ans.status else ans.detail
        self.last_error = "%s: %s" % (url, what)
        if verdict == REFUSED:
            # a refused body is an operator's problem (token, URL, ingest version): say so every time
            log.error(
                "auditline: ingest REFUSED a body (%s) at %s. Nothing is dropped: %d events (%d bytes) stay "
                "spooled in %s and are re-sent with back-off. Fix the token / endpoint / ingest, and they flow.",
                what,
                url,
                spool.pending(),
                spool.bytes,
                spool.dir,
            )
        elif now - self._last_loud >= 30:
            self._last_loud = now
            log.warning(
                "auditline: ingest unavailable (%s) at %s for %.0fs; %d events (%d bytes) spooled, retrying",
                what,
                url,
                now - self._failing_since,
                spool.pending(),
                spool.bytes,
            )

    def _drain_orphans(self) -> None:
        for slot in slots.orphans(self.s.spool_dir, exclude=self.slot.index):
            try:
                sp = Spool(
                    slot.path,
                    slot=slot.index,
                    max_bytes=self.s.max_bytes,
                    segment_bytes=self.s.segment_bytes,
                    fsync=self.s.fsync,
                    clock=self.clock,
                )
                if sp.pending():
                    log.warning(
                        "auditline: draining %d events of unclaimed slot %s (emitter %s)", sp.pending(), slot.path, sp.emitter
                    )
                for name, size, why in sp.report.quarantined:
                    log.error("auditline: spool damage quarantined: %s (%d bytes): %s", name, size, why)
                pos = sp.start()
                while sp.pending() and not self._stop.is_set():
                    n, pos, verdict = self._send_some(sp, pos)
                    if verdict or not n:
                        break
                sp.close()
            except Exception as e:
                log.error("auditline: cannot drain slot %s: %s", slot.path, e)
            finally:
                slot.release()

    # ---- metrics --------------------------------------------------------

    def samples(self):
        sp = self.spool
        yield "spool_bytes", {}, sp.bytes
        yield "spool_max_bytes", {}, sp.max_bytes
        yield "spool_pending_events", {}, sp.pending()
        for k, v in self.spooled.items():
            yield "events_spooled_total", {"kind": KIND_NAMES[k]}, v
        for k, v in self.refused.items():
            yield "events_refused_total", {"reason": k}, v
        yield "events_delivered_total", {}, self.delivered
        for k, v in self.posts.items():
            yield "posts_total", {"result": k}, v
        yield "quarantined_bytes_total", {}, sp.quarantined_bytes
        yield "sequence_next", {}, sp.next_seq
        yield "sequence_acked", {}, sp.acked
        yield "last_delivery_timestamp_seconds", {}, round(self.last_delivery, 3)
        yield "delivering", {}, 1 if self.delivering else 0

    def metrics_text(self) -> str:
        return metrics_mod.render(self.samples(), {"emitter": self.spool.emitter, "slot": self.slot.index})

    def status(self) -> dict:
        st = {
            "emitter": self.spool.emitter,
            "slot": self.slot.index,
            "pid": self.pid,
            "time": rfc3339(self.clock()),
            "config_hash": self.config_hash,
            "config_seq": self.config_seq,
            "last_error": self.last_error,
            "spool_dir": self.slot.path,
        }
        for name, extra, v in self.samples():
            key = name + "".join("." + str(x) for x in extra.values())
            st[key] = v
        return st

    def write_status(self) -> None:
        path = os.path.join(self.slot.path, "status.json")
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(self.status(), f, indent=1, sort_keys=True)
            os.replace(path + ".tmp", path)
        except OSError:
            pass
